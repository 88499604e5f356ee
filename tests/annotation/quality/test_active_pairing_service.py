"""Active model pairing in a project: open tasks scored by model pair, re-scored as votes arrive, served by score;
project settings validated at the API (400 naming the field)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.models import ComparisonTask, Role
from annotation.services.assignment import task_next_for_annotator
from annotation.services.pairing import pair_priorities_refresh
from annotation.tasks import pairing_refresh
from tests.factories import make_project, make_task, make_token, make_user

pytestmark = pytest.mark.django_db


def _battle(pairs: dict[tuple[str, str], int], **fields):
    project = make_project(
        overlap_k=1, ask_strength=False, model_pairing="active", serving_order="mix", **fields
    )
    for (a, b), n in pairs.items():
        for _ in range(n):
            make_task(project, model_a=a, model_b=b)
    return project


def _scores(project) -> dict[tuple[str, str], set[float]]:
    out: dict = {}
    for t in ComparisonTask.objects.filter(project=project, status="open").select_related(
        "candidate_a", "candidate_b"
    ):
        pair = tuple(sorted((t.candidate_a.model_name, t.candidate_b.model_name)))
        out.setdefault(pair, set()).add(t.priority_score)
    return out


def _vote(project, a: str, b: str, winner: str):
    task = (
        ComparisonTask.objects.filter(
            project=project, status="open", candidate_a__model_name=a, candidate_b__model_name=b
        )
        .order_by("id")
        .first()
    )
    from annotation.services.judgments import judgment_submit

    judgment_submit(task=task, annotator=make_user(), choice="A" if winner == a else "B")


def test_pairs_scored_and_a_heavily_voted_pair_drops_below_the_others(require_postgres):
    project = _battle({("m1", "m2"): 25, ("m1", "m3"): 3, ("m2", "m3"): 3})
    assert pair_priorities_refresh(project=project) == 31
    before = _scores(project)
    assert all(len(v) == 1 for v in before.values())  # one score per pair
    assert {next(iter(v)) for v in before.values()} == {1.0}  # no votes: all pairs equally useful
    for i in range(20):
        _vote(project, "m1", "m2", "m1" if i % 2 else "m2")
    pair_priorities_refresh(project=project)
    after = {pair: next(iter(v)) for pair, v in _scores(project).items()}
    assert after[("m1", "m2")] < after[("m1", "m3")] and after[("m1", "m2")] < after[("m2", "m3")]
    # The next task served (random share 0 in effect below) is a pair with model m3.
    project.random_share = 0.0
    project.save(update_fields=["random_share"])
    task = task_next_for_annotator(project=project, annotator=make_user())
    assert "m3" in (task.candidate_a.model_name, task.candidate_b.model_name)


def test_uniform_projects_are_left_alone_and_the_celery_task_wraps_the_service(require_postgres):
    uniform = make_project(overlap_k=1)
    make_task(uniform, model_a="x", model_b="y")
    assert pair_priorities_refresh(project=uniform) == 0
    assert ComparisonTask.objects.get(project=uniform).priority_score is None
    active = _battle({("x", "y"): 2})
    assert pairing_refresh.apply(args=[active.pk]).get() == 2


def test_project_api_validates_serving_settings():
    engineer = make_user(Role.ENGINEER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(engineer, ['read', 'annotate', 'train'])}")
    r = client.post("/api/v1/projects/", {"name": "p1", "serving_order": "smart"}, format="json")
    assert r.status_code == 400 and "serving_order" in str(r.json())
    r = client.post("/api/v1/projects/", {"name": "p2", "random_share": 1.5}, format="json")
    assert r.status_code == 400 and "random_share" in str(r.json())
    r = client.post("/api/v1/projects/", {"name": "p3", "model_pairing": "elo"}, format="json")
    assert r.status_code == 400 and "model_pairing" in str(r.json())
    r = client.post(
        "/api/v1/projects/",
        {"name": "p4", "serving_order": "mix", "random_share": 0.2, "model_pairing": "active"},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert (r.json()["serving_order"], r.json()["random_share"], r.json()["model_pairing"]) == (
        "mix",
        0.2,
        "active",
    )
