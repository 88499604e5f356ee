"""Link hygiene and the pages around a lead's work: every link a page shows opens for the person it is shown
to, refusals explain themselves, the Swagger UI is served from local files, and the snapshot page's live
count, create form and "Train reward model" button."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation.models import Choice, Judgment, Role, TaskKind
from tests.factories import make_project, make_task, make_user
from training.datasets.selectors import snapshot_judgments
from training.datasets.spec import SnapshotSpec
from training.models import DatasetSnapshot, JobStatus, TrainingRun

SKIP = ("/accounts/logout/", "/static/", "/api/schema/")


@pytest.fixture
def world(db):
    people = {
        "annotator": make_user(Role.ANNOTATOR),
        "reviewer": make_user(Role.REVIEWER),
        "engineer": make_user(Role.ENGINEER),
        "admin": make_user(Role.ADMIN),
        "project_admin": make_user(Role.ANNOTATOR),
    }
    project = make_project(
        members=[
            (people["annotator"], Role.ANNOTATOR),
            (people["reviewer"], Role.REVIEWER),
            (people["engineer"], Role.ENGINEER),
            (people["project_admin"], Role.ADMIN),
        ],
        daily_target=4,
    )
    tasks = [make_task(project) for _ in range(3)]
    Judgment.objects.create(task=tasks[0], annotator=people["annotator"], choice=Choice.A)
    Judgment.objects.create(task=tasks[1], annotator=people["annotator"], choice=Choice.B)
    gold = tasks[2]
    gold.kind, gold.gold_choice = TaskKind.GOLD, Choice.A
    gold.save()
    Judgment.objects.create(task=gold, annotator=people["reviewer"], choice=Choice.A)
    return project, people


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _links(html: str) -> set[str]:
    return {h for h in re.findall(r'<a [^>]*href="(/[^"#]*)"', html) if not h.startswith(SKIP)}


@pytest.mark.parametrize("role", ["annotator", "reviewer", "engineer", "admin", "project_admin"])
def test_every_link_on_a_users_pages_opens_for_them(world, role):
    """Follow every link on the home page, the dashboard and one level below, as each role: none answers
    403 or 404 (before, an engineer's home page linked to a review queue that answered 403)."""
    _, people = world
    client = _client(people[role])
    seen: set[str] = set()
    frontier = {"/", reverse("annotation:dashboard")}
    for _depth in range(2):
        found: set[str] = set()
        for path in sorted(frontier - seen):
            seen.add(path)
            response = client.get(path)
            assert response.status_code == 200, f"{role}: {path} -> {response.status_code}"
            if "text/html" in response["Content-Type"]:
                found |= _links(response.content.decode())
        frontier = found
    for path in sorted(frontier - seen):
        assert client.get(path).status_code == 200, f"{role}: {path}"


def test_home_links_follow_each_pages_rule(world):
    project, people = world
    engineer_home = _client(people["engineer"]).get("/").content.decode()
    assert reverse("annotation:review", args=[project.pk]) not in engineer_home
    assert reverse("annotation:quality-project", args=[project.pk]) in engineer_home
    assert reverse("annotation:project-edit", args=[project.pk]) in engineer_home
    assert reverse("annotation:project-new") in engineer_home
    annotator_home = _client(people["annotator"]).get("/").content.decode()
    for name in ("review", "quality-project", "project-edit", "import", "members", "tasks"):
        assert reverse(f"annotation:{name}", args=[project.pk]) not in annotator_home, name
    assert reverse("annotation:project-new") not in annotator_home
    lead_home = _client(people["project_admin"]).get("/").content.decode()
    assert reverse("annotation:members", args=[project.pk]) in lead_home
    assert reverse("annotation:review", args=[project.pk]) in lead_home  # a project admin reviews


def test_progress_bars_show_the_project_and_the_daily_target(world):
    project, people = world
    client = _client(people["annotator"])
    home = client.get("/").content.decode()
    assert "2 / 4 today" in home and 'aria-label="Daily target"' in home
    annotate = client.get(reverse("annotation:annotate", args=[project.pk])).content.decode()
    assert "2 / 4 today" in annotate and "/ 3 tasks" in annotate


def test_refused_and_missing_pages_explain_themselves_in_the_site_layout(world):
    _, people = world
    client = _client(people["annotator"])
    refused = client.get(reverse("training:snapshot_list"))
    assert refused.status_code == 403
    body = refused.content.decode()
    assert "You cannot open this page" in body and "Snapshots are for ML engineers and admins." in body
    assert 'class="topbar"' in body and 'href="/"' in body
    missing = client.get(reverse("annotation:annotate", args=[999999]))
    assert missing.status_code == 404 and "Not found" in missing.content.decode()


def test_swagger_ui_is_served_from_local_static_files(world):
    _, people = world
    page = _client(people["annotator"]).get(reverse("swagger-ui"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and not re.search(r'(src|href)="https?://', html)
    nav = _client(people["annotator"]).get("/").content.decode()
    assert f'href="{reverse("swagger-ui")}">API</a>' in nav


def test_snapshot_live_count_create_and_train(world, django_capture_on_commit_callbacks, monkeypatch):
    project, people = world
    client = _client(people["engineer"])
    count_url = reverse("training:snapshot_count")
    expected = snapshot_judgments(SnapshotSpec(projects=[project.pk])).count()
    assert expected == 2  # the gold item's judgment is left out by default
    data = {
        "projects": [project.pk],
        "exclude_gold": "on",
        "exclude_flagged": "on",
        "ties": "drop",
        "both_bad": "drop",
        "combine": "majority",
        "name": "s",
    }
    assert client.get(count_url, data).json() == {"judgments": 2, "capped": False}
    assert client.get(count_url, {**data, "exclude_gold": ""}).json() == {"judgments": 3, "capped": False}
    tomorrow = (timezone.localdate() + timezone.timedelta(days=1)).isoformat()
    assert client.get(count_url, {**data, "date_from": tomorrow}).json() == {"judgments": 0, "capped": False}
    # The live count stops at its cap (a big selection reads "100,000+", not a million rows per keystroke).
    import training.datasets.selectors
    import training.datasets.views

    for module in (training.datasets.selectors, training.datasets.views):
        monkeypatch.setattr(module, "SPEC_COUNT_CAP", 1)
    assert client.get(count_url, data).json() == {"judgments": 1, "capped": True}
    monkeypatch.undo()
    bad = client.get(count_url, {**data, "projects": []})
    assert bad.status_code == 400 and "projects" in bad.json()["error"]
    # Another project's id is not counted for someone who cannot see it.
    hidden = make_project()
    assert client.get(count_url, {**data, "projects": [hidden.pk]}).status_code == 400
    assert _client(people["annotator"]).get(count_url, data).status_code == 403

    response = client.post(reverse("training:snapshot_create"), {**data, "name": "helpful-v1"})
    snapshot = DatasetSnapshot.objects.get(name="helpful-v1")
    assert response.status_code == 302 and response["Location"] == reverse(
        "training:snapshot_detail", args=[snapshot.pk]
    )
    assert snapshot.status == JobStatus.QUEUED and snapshot.spec["projects"] == [project.pk]
    assert snapshot.spec["exclude_gold"] is True
    empty = client.post(reverse("training:snapshot_create"), {**data, "name": "none", "date_from": tomorrow})
    assert empty.status_code == 400 and not DatasetSnapshot.objects.filter(name="none").exists()

    # The Train button shows once the snapshot is built, and queues a run on it.
    detail = reverse("training:snapshot_detail", args=[snapshot.pk])
    assert 'id="train-form"' not in client.get(detail).content.decode()
    DatasetSnapshot.objects.filter(pk=snapshot.pk).update(
        status=JobStatus.SUCCEEDED, artifact_dir="/nonexistent"
    )
    page = client.get(detail).content.decode()
    assert 'id="train-form"' in page and "Train reward model" in page
    form = dict(re.findall(r'name="(snapshot|base_model|seed)" value="([^"]*)"', page))
    response = client.post(reverse("training:run_create"), {**form, "truncate_prompt_left": "on"})
    run = TrainingRun.objects.get(snapshot=snapshot)
    assert response.status_code == 302 and run.status == JobStatus.QUEUED and run.base_model == "minilm"
