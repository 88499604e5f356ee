"""The annotator JSON API end to end through DRF's test client (real DB, real auth)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.models import Judgment, Role, TaskKind, TaskSkip, TaskStatus
from tests.factories import add_member, make_project, make_task, make_token, make_user

pytestmark = pytest.mark.django_db


def _client(user, scopes=("annotate",)) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, list(scopes))}")
    return client


def test_next_submit_idempotent_skip_undo(project, annotator):
    t1 = make_task(project, model_a="secret-model-a", model_b="secret-model-b")
    t2 = make_task(project)
    api = _client(annotator)
    res = api.post(f"/api/v1/projects/{project.pk}/tasks/next")
    assert res.status_code == 200
    assert res.json()["task"]["id"] == t1.pk
    assert "secret-model" not in res.content.decode()
    body = {"choice": "A", "strength": 2, "rationale": "more precise", "time_spent_ms": 1234}
    first = api.post(f"/api/v1/tasks/{t1.pk}/submit", body, HTTP_IDEMPOTENCY_KEY="key-1", format="json")
    assert first.status_code == 201, first.json()
    again = api.post(f"/api/v1/tasks/{t1.pk}/submit", body, HTTP_IDEMPOTENCY_KEY="key-1", format="json")
    assert again.status_code == 200 and again.json()["judgment"] == first.json()["judgment"]
    assert Judgment.objects.get(pk=first.json()["judgment"]).time_spent_ms == 1234

    undo = api.post(f"/api/v1/judgments/{first.json()['judgment']}/undo")
    assert undo.status_code == 200
    assert not Judgment.objects.filter(task=t1).exists()

    skip = api.post(f"/api/v1/tasks/{t1.pk}/skip", {"reason": "offensive"}, format="json")
    assert skip.status_code == 200
    assert TaskSkip.objects.filter(task=t1, annotator=annotator, reason="offensive").exists()
    assert api.post(f"/api/v1/projects/{project.pk}/tasks/next").json()["task"]["id"] == t2.pk


def test_submit_validation_error_body(project, annotator):
    task = make_task(project)
    res = _client(annotator).post(f"/api/v1/tasks/{task.pk}/submit", {"choice": "A"}, format="json")
    assert res.status_code == 400
    assert "strength" in res.json()["error"]["fields"]


def test_scope_and_visibility(project, annotator):
    task = make_task(project)
    res = _client(annotator, scopes=("export",)).post(f"/api/v1/projects/{project.pk}/tasks/next")
    assert res.status_code == 403
    outsider = make_user()
    res = _client(outsider).post(f"/api/v1/tasks/{task.pk}/submit", {"choice": "tie"}, format="json")
    assert res.status_code == 404


def test_gold_feedback_and_hidden_gold(annotator):
    project = make_project(gold_rate=1.0, gold_feedback=True, ask_strength=False)
    add_member(project, annotator)
    make_task(project)
    gold = make_task(project, kind=TaskKind.GOLD, gold_choice="B", gold_explanation="B is factual")
    api = _client(annotator)
    served = api.post(f"/api/v1/projects/{project.pk}/tasks/next").json()["task"]
    assert served["id"] == gold.pk and "gold" not in str(served)
    res = api.post(f"/api/v1/tasks/{gold.pk}/submit", {"choice": "A"}, format="json").json()
    assert res["gold_feedback"]["correct"] is False and res["gold_feedback"]["gold_choice"] == "B"


def test_review_queue_and_adjudicate(project, annotator):
    task = make_task(project)
    other = make_user()
    add_member(project, other)
    _client(annotator).post(
        f"/api/v1/tasks/{task.pk}/submit", {"choice": "A", "strength": 1, "rationale": "A ok"}
    )
    _client(other).post(
        f"/api/v1/tasks/{task.pk}/submit", {"choice": "B", "strength": 1, "rationale": "B ok"}
    )
    task.refresh_from_db()
    assert task.status == TaskStatus.NEEDS_REVIEW
    assert _client(annotator).get("/api/v1/review/queue").status_code == 403
    reviewer = make_user(Role.REVIEWER)
    add_member(project, reviewer, Role.REVIEWER)
    queue = _client(reviewer).get("/api/v1/review/queue").json()["results"]
    assert [t["id"] for t in queue] == [task.pk]
    assert {j["rationale"] for j in queue[0]["judgments"]} == {"A ok", "B ok"}
    res = _client(reviewer).post(
        f"/api/v1/tasks/{task.pk}/adjudicate", {"choice": "B", "note": "B"}, format="json"
    )
    assert res.status_code == 201
    task.refresh_from_db()
    assert task.status == TaskStatus.ADJUDICATED
    assert _client(reviewer).get("/api/v1/review/queue").json()["results"] == []


def test_dashboard_numbers(annotator):
    project = make_project(ask_strength=False, overlap_k=3)
    add_member(project, annotator)
    others = [make_user(), make_user()]
    shared = [make_task(project) for _ in range(2)]
    from annotation.services.judgments import judgment_submit

    for task, mine in zip(shared, ["A", "B"], strict=True):
        judgment_submit(task=task, annotator=annotator, choice=mine)
        for o in others:
            judgment_submit(task=task, annotator=o, choice="A")
    gold = make_task(project, kind=TaskKind.GOLD, gold_choice="A")
    judgment_submit(task=gold, annotator=annotator, choice="A")
    data = _client(annotator).get("/api/v1/me/dashboard").json()
    assert data["counts"]["total"] == 3
    assert data["consensus"] == {"compared": 2, "agreed": 1, "agreement": 0.5}
    assert data["gold"] == {"answered": 1, "correct": 1, "accuracy": 1.0}
