"""Quality pages and JSON API: access rules, the same numbers in both, flag review through HTTP."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import AnnotatorFlag, FlagStatus, Role
from annotation.services.quality import flags_refresh
from annotation.tasks import quality_refresh_flags
from tests.factories import add_member, make_project, make_task, make_token, make_user

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_pages_render_numbers_and_charts(synthetic_project):
    sp = synthetic_project
    flags_refresh(project=sp.project)
    c = _client(sp.reviewer)
    page = c.get(reverse("annotation:quality-project", args=[sp.project.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="agreement-project"' in html and "data:image/svg+xml;base64," in html
    assert f"random-{sp.project.pk}" in html and "position_bias" in html
    board = c.get(reverse("annotation:quality-leaderboard", args=[sp.project.pk]))
    assert board.status_code == 200
    body = board.content.decode()
    assert body.index(">strong<") < body.index(">mid<") < body.index(">weak<")
    detail = c.get(reverse("annotation:quality-annotator", args=[sp.project.pk, sp.users["always_a"].pk]))
    assert (
        detail.status_code == 200 and b"binomial p" in detail.content and b"Clear</button>" in detail.content
    )


def test_annotators_and_outsiders_are_refused(synthetic_project):
    sp = synthetic_project
    url = reverse("annotation:quality-project", args=[sp.project.pk])
    assert _client(sp.users["good1"]).get(url).status_code == 403
    assert _client(make_user(Role.REVIEWER)).get(url).status_code == 404  # not a member
    assert Client().get(url).status_code == 302  # to the login page


def test_clear_flag_through_the_page(synthetic_project):
    sp = synthetic_project
    flags_refresh(project=sp.project)
    flag = AnnotatorFlag.objects.get(project=sp.project, annotator=sp.users["too_fast"])
    c = _client(sp.reviewer)
    resp = c.post(
        reverse("annotation:quality-flag-clear", args=[sp.project.pk, flag.pk]),
        {"note": "spoke to them", "next": "https://evil.example/"},
    )
    assert resp.status_code == 302 and resp["Location"] == reverse(
        "annotation:quality-project", args=[sp.project.pk]
    )
    flag.refresh_from_db()
    assert flag.status == FlagStatus.CLEARED and flag.clear_note == "spoke to them"


def test_api_serves_the_same_numbers_with_export_scope(synthetic_project):
    sp = synthetic_project
    engineer = make_user(Role.ENGINEER)
    add_member(sp.project, engineer, Role.ENGINEER)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {make_token(engineer, ['export'])}"}
    c = Client()
    q = c.get(reverse("api-quality-project", args=[sp.project.pk]) + "?n_boot=100", **auth)
    assert q.status_code == 200, q.content
    data = q.json()
    assert data["agreement"]["n_tasks"] == 80
    assert {"value", "low", "high", "n"} <= set(data["agreement"]["project"]["krippendorff_alpha_ordinal"])
    names = {r["username"].rsplit("-", 1)[0]: r for r in data["annotators"]}
    assert names["always_a"]["share_a"] == 1.0
    lb = c.get(reverse("api-quality-leaderboard", args=[sp.project.pk]) + "?n_boot=50", **auth).json()
    assert lb["order"] == ["strong", "mid", "weak"] and lb["n_comparisons"] == 560
    assert len(lb["win_rate"]) == 3 and lb["win_rate"][0][0] is None
    rel = c.get(reverse("api-quality-reliability", args=[sp.project.pk]), **auth).json()["reliability"]
    assert rel[str(sp.users["good1"].pk)] > rel[str(sp.users["random"].pk)]
    # Flags: refresh, list open, clear one.
    created = c.post(reverse("api-quality-flags-refresh", args=[sp.project.pk]), **auth)
    assert created.status_code == 201 and len(created.json()) >= 4
    open_flags = c.get(reverse("api-quality-flags", args=[sp.project.pk]) + "?status=open", **auth).json()
    target = next(f for f in open_flags if f["reason"] == "speed_outlier")
    cleared = c.post(
        reverse("api-quality-flag-clear", args=[target["id"]]),
        {"note": "ok"},
        content_type="application/json",
        **auth,
    )
    assert cleared.status_code == 200 and cleared.json()["status"] == "cleared"
    again = c.post(
        reverse("api-quality-flag-clear", args=[target["id"]]), {}, content_type="application/json", **auth
    )
    assert again.status_code == 400 and again.json()["error"]["fields"]["status"]
    detail = c.get(reverse("api-quality-annotator", args=[sp.project.pk, target["annotator"]]), **auth).json()
    assert detail["stats"]["fast_share"] == 1.0 and detail["flags"][0]["status"] == "cleared"


def test_api_scope_and_role(synthetic_project):
    sp = synthetic_project
    url = reverse("api-quality-project", args=[sp.project.pk])
    wrong_scope = {"HTTP_AUTHORIZATION": f"Bearer {make_token(sp.reviewer, ['annotate'])}"}
    assert Client().get(url, **wrong_scope).status_code == 403
    annotator = {"HTTP_AUTHORIZATION": f"Bearer {make_token(sp.users['good1'], ['export'])}"}
    assert Client().get(url, **annotator).status_code == 403


def test_celery_task_runs_the_flag_rules(synthetic_project):
    sp = synthetic_project
    result = quality_refresh_flags.apply(args=[sp.project.pk]).get()
    assert result[str(sp.project.pk)] == AnnotatorFlag.objects.filter(project=sp.project).count() > 0


def test_empty_project_pages_and_api(db):
    reviewer = make_user(Role.REVIEWER)
    project = make_project(members=[(reviewer, Role.REVIEWER)])
    make_task(project)  # a task nobody judged yet
    c = _client(reviewer)
    for name in ("annotation:quality-project", "annotation:quality-leaderboard"):
        assert c.get(reverse(name, args=[project.pk])).status_code == 200
    assert (
        b"No judgments compare" in c.get(reverse("annotation:quality-leaderboard", args=[project.pk])).content
    )
    assert c.get(reverse("annotation:quality-annotator", args=[project.pk, reviewer.pk])).status_code == 404
    data = c.get(reverse("api-quality-project", args=[project.pk])).json()
    assert data["agreement"]["n_tasks"] == 0 and data["annotators"] == []
    assert data["agreement"]["project"]["fleiss_kappa"]["value"] is None
    assert flags_refresh(project=project) == []
