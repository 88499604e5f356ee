"""A lead's pages (project settings, import, members and invites, task browser) through Django's test client:
who may open them, what they write, and that a refused or bad request writes nothing."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotation.models import (
    Adjudication,
    Choice,
    ComparisonTask,
    ImportJob,
    Judgment,
    Project,
    ProjectInvite,
    ProjectMembership,
    Prompt,
    Role,
    TaskKind,
    TaskStatus,
)
from config.celery import app as celery_app
from tests.factories import add_member, make_project, make_task, make_user

GOOD_JSONL = (
    b'{"prompt": "Capital of France?", "chosen": "Paris", "rejected": "Lyon"}\n'
    b'{"prompt": "2+2?", "responses": ["4", "5", "22"]}\n'
)
PAIRS_JSONL = b"".join(
    json.dumps({"prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}"}).encode() + b"\n"
    for i in range(6)
)
BAD_JSONL = PAIRS_JSONL + b'{"prompt": "seven", "chosen": "x"}\n'


@pytest.fixture
def eager_celery():
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = old


@pytest.fixture
def team(db):
    people = {
        "annotator": make_user(Role.ANNOTATOR),
        "reviewer": make_user(Role.REVIEWER),
        "engineer": make_user(Role.ENGINEER),
        "admin": make_user(Role.ADMIN),
        "outsider": make_user(Role.ANNOTATOR),
        # an annotator by global role who leads this one project (membership role admin)
        "project_admin": make_user(Role.ANNOTATOR),
    }
    project = make_project(
        members=[
            (people["annotator"], Role.ANNOTATOR),
            (people["reviewer"], Role.REVIEWER),
            (people["engineer"], Role.ENGINEER),
            (people["project_admin"], Role.ADMIN),
        ]
    )
    make_project(members=[(people["outsider"], Role.ANNOTATOR)])
    return project, people


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def lead_get_routes(project: Project) -> list[str]:
    job = ImportJob.objects.create(project=project, file_name="x.jsonl", file_path="/nonexistent/x.jsonl")
    return [
        reverse("annotation:project-edit", args=[project.pk]),
        reverse("annotation:import", args=[project.pk]),
        reverse("annotation:import-job", args=[project.pk, job.pk]),
        reverse("annotation:import-job-status", args=[project.pk, job.pk]),
        reverse("annotation:members", args=[project.pk]),
        reverse("annotation:tasks", args=[project.pk]),
    ]


EXPECTED = {
    "annotator": 403,
    "reviewer": 403,
    "outsider": 404,
    "engineer": 200,
    "admin": 200,
    "project_admin": 200,
}


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_lead_pages_answer_by_role_and_refusals_explain_themselves(team, role):
    project, people = team
    client = client_for(people[role])
    for path in lead_get_routes(project):
        response = client.get(path)
        assert response.status_code == EXPECTED[role], (role, path, response.status_code)
        if response.status_code == 403 and "status" not in path:
            body = response.content.decode()
            assert "You cannot open this page" in body and "engineers and admins" in body, path
            assert 'class="topbar"' in body  # the site's own layout, not a bare error
        if response.status_code == 404 and "status" not in path:
            assert "Not found" in response.content.decode()


@pytest.mark.parametrize("role", ["annotator", "reviewer", "outsider"])
def test_refused_writes_change_nothing(team, role):
    project, people = team
    task = make_task(project)
    client = client_for(people[role])
    before = (
        Project.objects.count(),
        ProjectMembership.objects.count(),
        ProjectInvite.objects.count(),
        ImportJob.objects.count(),
    )
    writes = [
        (reverse("annotation:project-new"), {"name": "sneaky", "overlap_k": 1}),
        (reverse("annotation:project-edit", args=[project.pk]), {"name": "renamed", "overlap_k": 3}),
        (reverse("annotation:invite-new", args=[project.pk]), {"role": "admin", "expires_in_days": 3}),
        (
            reverse("annotation:member-change", args=[project.pk, people["annotator"].pk]),
            {"action": "role", "role": "admin"},
        ),
        (
            reverse("annotation:tasks-bulk", args=[project.pk]),
            {"action": "gold", "tasks": [task.pk], "gold_choice": "A"},
        ),
        (
            reverse("annotation:import-upload", args=[project.pk]),
            {"file": SimpleUploadedFile("x.jsonl", GOOD_JSONL)},
        ),
    ]
    for path, data in writes:
        response = client.post(path, data)
        assert response.status_code in (403, 404), (path, response.status_code)
    assert before == (
        Project.objects.count(),
        ProjectMembership.objects.count(),
        ProjectInvite.objects.count(),
        ImportJob.objects.count(),
    )
    project.refresh_from_db()
    task.refresh_from_db()
    assert project.overlap_k == 1 and task.kind == TaskKind.STANDARD
    assert ProjectMembership.objects.get(project=project, user=people["annotator"]).role == Role.ANNOTATOR


def test_create_a_project_then_edit_its_settings_and_guidelines(team):
    _, people = team
    engineer = client_for(people["engineer"])
    response = engineer.post(
        reverse("annotation:project-new"),
        {
            "name": "Helpfulness v1",
            "description": "Which answer helps more?",
            "guidelines": "# Read first\n\nPrefer **correct** answers.",
            "overlap_k": 3,
            "pairing_strategy": "all_pairs",
            "pairs_per_prompt": 3,
            "allow_tie": "on",
            "ask_strength": "on",
            "extra_criteria": "helpful\nharmless\n",
            "gold_rate": "0.1",
            "swap_repeat_rate": "0",
            "lease_seconds": 600,
            "undo_grace_seconds": 30,
            "quality_settings": '{"gold_accuracy_min": 0.7}',
            "daily_target": 50,
            "max_ranking_length": 8,
        },
    )
    project = Project.objects.get(name="Helpfulness v1")
    assert response.status_code == 302 and response["Location"] == reverse(
        "annotation:import", args=[project.pk]
    )
    assert project.overlap_k == 3 and project.extra_criteria == ["helpful", "harmless"]
    assert project.quality_settings == {"gold_accuracy_min": 0.7} and project.daily_target == 50
    assert project.allow_tie and not project.allow_both_bad and project.gold_rate == 0.1
    assert ProjectMembership.objects.get(project=project, user=people["engineer"]).role == Role.ENGINEER

    edit = reverse("annotation:project-edit", args=[project.pk])
    page = engineer.get(edit).content.decode()
    assert "Prefer **correct** answers." in page and 'value="Helpfulness v1"' in page
    data = {
        "name": "Helpfulness v1",
        "guidelines": "Prefer short answers.",
        "overlap_k": 2,
        "pairing_strategy": "random_k",
        "pairs_per_prompt": 2,
        "gold_rate": "0",
        "swap_repeat_rate": "0",
        "lease_seconds": 300,
        "undo_grace_seconds": 10,
        "daily_target": "",
        "max_ranking_length": 8,
    }
    assert engineer.post(edit, data).status_code == 302
    project.refresh_from_db()
    assert project.guidelines == "Prefer short answers." and project.overlap_k == 2
    assert project.daily_target is None and project.pairing_strategy == "random_k"

    # Bad values: 400 naming the field, nothing saved.
    bad = engineer.post(edit, {**data, "gold_rate": "1.5", "quality_settings": "[1, 2]"})
    assert bad.status_code == 400
    body = bad.content.decode()
    assert 'id="gold_rate-errors"' in body and 'id="quality_settings-errors"' in body
    project.refresh_from_db()
    assert project.gold_rate == 0.0
    # A duplicate name is refused by the model's own validation through the service.
    other = make_project(name="taken")
    assert engineer.post(edit, {**data, "name": other.name}).status_code == 400


def test_annotators_cannot_create_projects_and_the_page_says_why(team):
    _, people = team
    response = client_for(people["annotator"]).get(reverse("annotation:project-new"))
    assert response.status_code == 403
    assert "Creating projects is for ML engineers and admins" in response.content.decode()


def test_guidelines_preview_is_rendered_and_sanitised_by_the_server(team):
    project, people = team
    url = reverse("annotation:guidelines-preview")
    text = "**bold** <script>alert(1)</script> [x](javascript:alert(2))"
    for lead in ("engineer", "project_admin"):
        html = client_for(people[lead]).post(url, {"text": text}).json()["html"]
        assert "<strong>bold</strong>" in html and "<script>" not in html and "javascript:" not in html
    assert client_for(people["annotator"]).post(url, {"text": "x"}).status_code == 403


# --- import -------------------------------------------------------------------------------------------


def _upload(client, project, name: str, content: bytes, **options):
    return client.post(
        reverse("annotation:import-upload", args=[project.pk]),
        {"file": SimpleUploadedFile(name, content), **options},
    )


def _start(client, project, job, mode):
    return client.post(reverse("annotation:import-job-start", args=[project.pk, job.pk]), {"mode": mode})


def _rows(project) -> tuple[int, int, int]:
    return (
        Prompt.objects.filter(project=project).count(),
        ComparisonTask.objects.filter(project=project).count(),
        Judgment.objects.filter(task__project=project).count(),
    )


def test_upload_preview_dry_run_then_import(
    team, eager_celery, django_capture_on_commit_callbacks, require_postgres
):
    project, people = team
    client = client_for(people["engineer"])
    response = _upload(client, project, "items.jsonl", PAIRS_JSONL, prior_judgments="on")
    job = ImportJob.objects.get(project=project)
    assert response.status_code == 302 and response["Location"].endswith(f"/import/{job.pk}")
    assert job.preview["format"] == "jsonl" and job.preview["shape"] == "pairs" and not job.preview["error"]
    assert job.preview["columns"] == ["prompt", "chosen", "rejected"]
    assert [role.split(",")[0] for _, role in job.preview["mapping"]] == [
        "prompt (text or chat messages)",
        "candidate",
        "candidate",
    ]
    assert job.preview["rows"][0]["values"] == ["question 0", "good 0", "bad 0"]  # in column order
    page = client.get(response["Location"]).content.decode()
    assert "question 0" in page and "candidate, preferred" in page
    assert _rows(project) == (0, 0, 0)

    # The import waits for a dry run that passed.
    _start(client, project, job, "import")
    assert _rows(project) == (0, 0, 0)

    with django_capture_on_commit_callbacks(execute=True):
        _start(client, project, job, "dry_run")
    job.refresh_from_db()
    assert job.status == "succeeded" and job.dry_run_report["tasks_created"] == 6
    assert job.dry_run_report["records"] == 6 and job.dry_run_report["judgments_created"] == 6
    assert _rows(project) == (0, 0, 0)  # a dry run writes nothing
    status = client.get(reverse("annotation:import-job-status", args=[project.pk, job.pk])).json()
    assert status["status"] == "succeeded" and status["total"] == 6 and status["live"] is False

    with django_capture_on_commit_callbacks(execute=True):
        _start(client, project, job, "import")
    job.refresh_from_db()
    assert job.status == "succeeded" and job.report["tasks_created"] == 6
    assert _rows(project) == (6, 6, 6)
    assert job.batch is not None and job.batch.source == "items.jsonl"  # the name, not the server path
    # A second import of the same file is refused, and nothing is duplicated.
    _start(client, project, job, "dry_run")
    assert _rows(project) == (6, 6, 6)


def test_bad_file_shows_the_first_error_with_its_line_and_writes_nothing(
    team, eager_celery, django_capture_on_commit_callbacks, require_postgres
):
    project, people = team
    client = client_for(people["engineer"])
    _upload(client, project, "bad.jsonl", BAD_JSONL)
    job = ImportJob.objects.get(project=project)
    assert job.preview["error"] == ""  # the first five rows are fine
    with django_capture_on_commit_callbacks(execute=True):
        _start(client, project, job, "dry_run")
    job.refresh_from_db()
    assert job.status == "failed" and job.error == "line 7: rejected: missing required field"
    assert _rows(project) == (0, 0, 0)
    page = client.get(reverse("annotation:import-job", args=[project.pk, job.pk])).content.decode()
    assert "line 7: rejected: missing required field" in page and "Nothing was written" in page
    # Still no import without a dry run that passed.
    _start(client, project, job, "import")
    assert _rows(project) == (0, 0, 0)

    # A file broken in its first rows says so in the preview already.
    _upload(client, project, "broken.jsonl", b'{"prompt": "a", "chosen": "b", "rejected": "c"}\n{oops\n')
    broken = ImportJob.objects.filter(project=project).latest("pk")
    assert broken.preview["error"].startswith("line 2: ")
    # An unknown extension is refused with the reason, like the API.
    _upload(client, project, "notes.txt", b"hello")
    assert (
        ImportJob.objects.filter(project=project).latest("pk").preview["error"].startswith("format: unknown")
    )
    assert _rows(project) == (0, 0, 0)


def test_upload_over_the_limit_is_refused_before_it_is_stored(team, settings, tmp_path):
    project, people = team
    settings.PREFLAB_MAX_IMPORT_BYTES = 50
    response = _upload(client_for(people["engineer"]), project, "big.jsonl", PAIRS_JSONL)
    assert response.status_code in (400, 413)
    assert not ImportJob.objects.exists()


# --- members and invites ------------------------------------------------------------------------------


def _invite(client, project, role="annotator", days=7) -> str:
    response = client.post(
        reverse("annotation:invite-new", args=[project.pk]), {"role": role, "expires_in_days": days}
    )
    assert response.status_code == 302
    page = client.get(reverse("annotation:members", args=[project.pk])).content.decode()
    match = re.search(r'id="invite-link" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_invite_link_creates_an_account_once_and_stores_only_a_hash(team):
    project, people = team
    lead = client_for(people["engineer"])
    link = _invite(lead, project, role="reviewer", days=3)
    raw = link.rsplit("/", 1)[1]
    invite = ProjectInvite.objects.get(project=project)
    assert invite.role == "reviewer" and raw not in invite.token_hash and invite.token_hash != raw
    assert timedelta(days=2, hours=23) < invite.expires_at - timezone.now() <= timedelta(days=3)
    # The link is shown once.
    assert raw not in lead.get(reverse("annotation:members", args=[project.pk])).content.decode()

    guest = Client()
    page = guest.get(link)
    assert page.status_code == 200 and f"Join {project.name}" in page.content.decode()
    mismatch = guest.post(link, {"username": "newbie", "password": "long-pass-123", "password2": "other"})
    assert mismatch.status_code == 400 and not User.objects.filter(username="newbie").exists()
    response = guest.post(
        link, {"username": "newbie", "password": "long-pass-123", "password2": "long-pass-123"}
    )
    assert response.status_code == 302
    newbie = User.objects.get(username="newbie")
    assert ProjectMembership.objects.get(project=project, user=newbie).role == "reviewer"
    assert project.name in guest.get("/").content.decode()  # logged in, sees the project
    invite.refresh_from_db()
    assert invite.used_by == newbie and invite.used_at is not None

    # Single use: the same link creates nothing more.
    again = Client().post(
        link, {"username": "second", "password": "long-pass-123", "password2": "long-pass-123"}
    )
    assert again.status_code == 404 and "already been used" in again.content.decode()
    assert not User.objects.filter(username="second").exists()


def test_invite_joins_a_logged_in_account_and_expired_or_revoked_links_do_nothing(team):
    project, people = team
    lead = client_for(people["engineer"])
    outsider = people["outsider"]
    link = _invite(lead, project)
    assert client_for(outsider).post(link).status_code == 302
    assert ProjectMembership.objects.get(project=project, user=outsider).role == "annotator"

    expired_link = _invite(lead, project)
    ProjectInvite.objects.filter(used_at__isnull=True).update(
        created_at=timezone.now() - timedelta(days=8), expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = Client().post(
        expired_link, {"username": "late", "password": "long-pass-123", "password2": "long-pass-123"}
    )
    assert response.status_code == 404 and "expired" in response.content.decode()
    assert not User.objects.filter(username="late").exists()

    revoked_link = _invite(lead, project)
    pending = ProjectInvite.objects.get(used_at__isnull=True, expires_at__gt=timezone.now())
    lead.post(reverse("annotation:invite-revoke", args=[project.pk, pending.pk]))
    assert Client().get(revoked_link).status_code == 404
    assert Client().get("/invite/inv_not-a-real-token").status_code == 404


def test_nobody_invites_or_promotes_above_their_own_role(team):
    project, people = team
    lead = client_for(people["engineer"])
    lead.post(reverse("annotation:invite-new", args=[project.pk]), {"role": "admin", "expires_in_days": 3})
    assert not ProjectInvite.objects.exists()
    lead.post(
        reverse("annotation:invite-new", args=[project.pk]), {"role": "annotator", "expires_in_days": 99}
    )
    assert not ProjectInvite.objects.exists()
    change = reverse("annotation:member-change", args=[project.pk, people["annotator"].pk])
    assert lead.post(change, {"action": "role", "role": "admin"}).status_code == 403
    assert ProjectMembership.objects.get(project=project, user=people["annotator"]).role == "annotator"
    # An engineer cannot touch the project admin either.
    demote = reverse("annotation:member-change", args=[project.pk, people["project_admin"].pk])
    assert lead.post(demote, {"action": "role", "role": "annotator"}).status_code == 403
    assert lead.post(demote, {"action": "remove"}).status_code == 403
    assert ProjectMembership.objects.get(project=project, user=people["project_admin"]).role == "admin"


def test_change_role_remove_and_deactivate(team):
    project, people = team
    lead = client_for(people["engineer"])
    annotator = people["annotator"]
    url = reverse("annotation:member-change", args=[project.pk, annotator.pk])
    lead.post(url, {"action": "role", "role": "reviewer"})
    assert ProjectMembership.objects.get(project=project, user=annotator).role == "reviewer"
    # Deactivating an account is for admins only.
    assert lead.post(url, {"action": "deactivate"}).status_code == 403
    annotator.refresh_from_db()
    assert annotator.is_active
    client_for(people["admin"]).post(url, {"action": "deactivate"})
    annotator.refresh_from_db()
    assert not annotator.is_active
    lead.post(url, {"action": "remove"})
    assert not ProjectMembership.objects.filter(project=project, user=annotator).exists()


# --- task browser -------------------------------------------------------------------------------------


@pytest.fixture
def browsed(team):
    project, people = team
    ann, other = people["annotator"], make_user(Role.ANNOTATOR)
    add_member(project, other)
    tasks = [make_task(project, a=f"answer alpha {i}", b=f"answer beta {i}") for i in range(60)]
    agree, split = tasks[0], tasks[1]
    for task, choices in ((agree, ("A", "A")), (split, ("A", "B"))):
        Judgment.objects.create(task=task, annotator=ann, choice=choices[0])
        Judgment.objects.create(task=task, annotator=other, choice=choices[1])
    ComparisonTask.objects.filter(pk=agree.pk).update(status=TaskStatus.COMPLETE, judgment_count=2)
    ComparisonTask.objects.filter(pk=split.pk).update(status=TaskStatus.NEEDS_REVIEW, judgment_count=2)
    needle = make_task(project, a="the needle response", b="hay")
    Judgment.objects.create(task=needle, annotator=other, choice="B")
    old = Judgment.objects.filter(task=needle).update(created_at=timezone.now() - timedelta(days=40))
    assert old == 1
    return project, people, tasks, needle


def _task_ids(response) -> list[int]:
    return [int(i) for i in re.findall(r'data-task="(\d+)"', response.content.decode())]


def test_task_browser_filters_and_cursor_pages(browsed):
    project, people, tasks, needle = browsed
    client = client_for(people["engineer"])
    url = reverse("annotation:tasks", args=[project.pk])
    first = client.get(url)
    ids = _task_ids(first)
    assert len(ids) == 50 and ids == sorted(ids, reverse=True) and ids[0] == needle.pk
    nxt = re.search(r'href="([^"]+)" id="next-page"', first.content.decode()).group(1).replace("&amp;", "&")
    rest = _task_ids(client.get(url + nxt))
    assert len(rest) == 11 and max(rest) < min(ids)
    assert set(ids) | set(rest) == set(
        ComparisonTask.objects.filter(project=project).values_list("pk", flat=True)
    )

    assert _task_ids(client.get(url, {"q": "needle"})) == [needle.pk]
    assert _task_ids(client.get(url, {"status": "needs_review"})) == [tasks[1].pk]
    assert _task_ids(client.get(url, {"disagreement": "on"})) == [tasks[1].pk]
    assert _task_ids(client.get(url, {"annotator": people["annotator"].pk})) == [tasks[1].pk, tasks[0].pk]
    recent = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert needle.pk not in _task_ids(client.get(url, {"judged_from": recent}))
    long_ago = (timezone.localdate() - timedelta(days=41)).isoformat()
    until = (timezone.localdate() - timedelta(days=39)).isoformat()
    assert _task_ids(client.get(url, {"judged_from": long_ago, "judged_to": until})) == [needle.pk]
    assert _task_ids(client.get(url, {"gold": "yes"})) == []
    assert client.get(url, {"judged_from": "not-a-date"}).status_code == 400


def test_task_browser_pages_without_count_or_offset(browsed):
    project, people, _, _ = browsed
    client = client_for(people["engineer"])
    url = reverse("annotation:tasks", args=[project.pk])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(
            url, {"q": "answer", "status": "open", "before": 10**9, "annotator": people["annotator"].pk}
        )
    assert response.status_code == 200
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    assert " OFFSET " not in sql and "COUNT(" not in sql
    # A fixed number of queries (session, roles, project, the annotator list, the page, its judgments),
    # whatever the page holds.
    assert len(queries.captured_queries) <= 16, [q["sql"] for q in queries.captured_queries]


def test_bulk_actions_mark_gold_reopen_and_send_to_review(browsed):
    project, people, tasks, needle = browsed
    client = client_for(people["engineer"])
    bulk = reverse("annotation:tasks-bulk", args=[project.pk])
    agree, split, fresh = tasks[0], tasks[1], tasks[2]
    foreign = make_task(make_project())

    client.post(bulk, {"action": "gold", "tasks": [fresh.pk, foreign.pk], "gold_choice": "B"})
    fresh.refresh_from_db()
    foreign.refresh_from_db()
    assert fresh.kind == TaskKind.GOLD and fresh.gold_choice == "B"
    assert foreign.kind == TaskKind.STANDARD  # another project's id is ignored
    # Gold needs its answer.
    client.post(bulk, {"action": "gold", "tasks": [tasks[3].pk]})
    assert ComparisonTask.objects.get(pk=tasks[3].pk).kind == TaskKind.STANDARD

    client.post(bulk, {"action": "review", "tasks": [agree.pk, tasks[4].pk]})
    agree.refresh_from_db()
    assert agree.status == TaskStatus.NEEDS_REVIEW
    assert ComparisonTask.objects.get(pk=tasks[4].pk).status == TaskStatus.OPEN  # no judgment yet: left out

    Adjudication.objects.create(task=split, reviewer=people["reviewer"], choice=Choice.A)
    ComparisonTask.objects.filter(pk=split.pk).update(status=TaskStatus.ADJUDICATED)
    client.post(bulk, {"action": "reopen", "tasks": [split.pk]})
    split.refresh_from_db()
    assert split.status == TaskStatus.OPEN and split.judgment_count == 0
    assert not Adjudication.objects.filter(task=split).exists()
    assert list(Judgment.objects.filter(task=split).values_list("is_extra", flat=True)) == [True, True]


def test_the_project_form_page_renders_every_setting_the_form_takes(team):
    """The template lists fields one by one; a setting added to the form must also reach the page, or the
    browser never posts it and every save is refused."""
    from annotation.ui.setup_forms import ProjectForm

    _, people = team
    page = client_for(people["engineer"]).get(reverse("annotation:project-new")).content.decode()
    missing = [name for name in ProjectForm.base_fields if f'name="{name}"' not in page]
    assert missing == []


def test_task_browser_search_matches_prompt_and_either_response_case_insensitively(browsed):
    project, people, tasks, needle = browsed
    client = client_for(people["engineer"])
    url = reverse("annotation:tasks", args=[project.pk])
    assert _task_ids(client.get(url, {"q": "NEEDLE resp"})) == [needle.pk]  # response A, other case
    assert _task_ids(client.get(url, {"q": "beta 59"})) == [tasks[59].pk]  # response B
    prompt_text = needle.prompt.text
    hits = _task_ids(client.get(url, {"q": prompt_text.upper()}))
    assert needle.pk in hits
    other = make_project(name="elsewhere", members=[(people["engineer"], Role.ENGINEER)])
    make_task(other, a="the needle response", b="hay")  # same text in another project: not listed
    assert _task_ids(client.get(url, {"q": "needle"})) == [needle.pk]


def test_task_browser_search_can_use_the_trigram_indexes(browsed, require_postgres):
    """At 1M judgments a scan of every task's three texts took 3.2 s; the search must be answerable from
    the trigram indexes (forced here: on a small table the planner would rightly pick a scan)."""
    from annotation.selectors.task_browser import TaskFilters, task_browser_queryset

    project, *_ = browsed
    sql, params = task_browser_queryset(
        project=project, filters=TaskFilters(q="needle")
    ).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "annotation_prompt_text_trgm" in plan and "annotation_candidate_text_trgm" in plan, plan
