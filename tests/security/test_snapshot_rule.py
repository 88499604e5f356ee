"""One snapshot rule on every training and policy route: a snapshot is usable only when all of its projects
are visible. An engineer of project A must not list, train on, evaluate on or start a policy run from a
snapshot that also holds project B's judgments (404 from the API and the pages, a form error from the
launch forms, and the snapshot absent from every picker)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.models import Role, TokenScope
from tests.factories import make_project, make_user
from training.models import DatasetSnapshot, JobStatus, ModelEvaluation, TrainingRun

MIXED_NAME = "mixed-a-and-b"


@pytest.fixture
def mixed(world):
    """An A+B snapshot (A = the world's project, B = a project the engineer is not a member of)."""
    b = make_project(members=[(make_user(Role.ENGINEER), Role.ENGINEER)])
    snapshot = DatasetSnapshot.objects.create(
        name=MIXED_NAME,
        version=1,
        status=JobStatus.SUCCEEDED,
        artifact_dir=world.snapshot.artifact_dir,
        counts={"train": 1},
        completed_at=timezone.now(),
        spec={"projects": [world.project.pk, b.pk]},
    )
    snapshot.projects.add(world.project, b)
    return snapshot


def _api(world):
    return world.client_for("engineer", TokenScope.TRAIN)


def _page(world):
    return world.client_for("engineer")


def test_api_run_create_refuses_a_snapshot_with_a_hidden_project(world, mixed):
    before = TrainingRun.objects.count()
    body = {"snapshot_id": mixed.pk, "base_model": "tiny"}
    resp = _api(world).post(reverse("training-run-list"), body, content_type="application/json")
    assert resp.status_code == 404, resp.content
    assert TrainingRun.objects.count() == before
    # The same call on the A-only snapshot goes through: the 404 is the rule, not a broken route.
    ok = {"snapshot_id": world.snapshot.pk, "base_model": "tiny"}
    assert (
        _api(world).post(reverse("training-run-list"), ok, content_type="application/json").status_code == 202
    )


def test_api_evaluate_refuses_a_snapshot_with_a_hidden_project(world, mixed):
    url = reverse("reward-model-evaluate", args=[world.reward_model.pk])
    resp = _api(world).post(url, {"snapshot_id": mixed.pk}, content_type="application/json")
    assert resp.status_code == 404, resp.content
    assert not ModelEvaluation.objects.filter(snapshot=mixed).exists()


def test_api_policy_run_refuses_a_snapshot_with_a_hidden_project(world, mixed):
    before = TrainingRun.objects.count()
    body = {
        "kind": "sft",
        "base_model": "tiny-lm",
        "snapshot_id": mixed.pk,
        "config": {"algorithm": {"source": "snapshot"}},
    }
    resp = _api(world).post(reverse("policy-run-list"), body, content_type="application/json")
    assert resp.status_code == 404, resp.content
    assert TrainingRun.objects.count() == before
    body["snapshot_id"] = world.snapshot.pk
    assert (
        _api(world).post(reverse("policy-run-list"), body, content_type="application/json").status_code == 202
    )


def test_api_dpo_run_refuses_a_snapshot_with_a_hidden_project(world, mixed):
    body = {"kind": "dpo", "base_model": "tiny-lm", "snapshot_id": mixed.pk, "config": {}}
    resp = _api(world).post(reverse("policy-run-list"), body, content_type="application/json")
    assert resp.status_code == 404, resp.content
    assert not TrainingRun.objects.filter(kind="dpo").exists()
    body["snapshot_id"] = world.snapshot.pk
    ok = _api(world).post(reverse("policy-run-list"), body, content_type="application/json")
    assert ok.status_code == 202, ok.content


def test_run_launch_form_refuses_a_snapshot_with_a_hidden_project(world, mixed):
    before = TrainingRun.objects.count()
    resp = _page(world).post(
        reverse("training:run_create"), {"snapshot": mixed.pk, "base_model": "tiny"}, follow=True
    )
    assert resp.status_code == 200
    assert "Pick a ready snapshot." in resp.content.decode()
    assert TrainingRun.objects.count() == before


def test_policy_launch_form_refuses_a_snapshot_with_a_hidden_project(world, mixed):
    before = TrainingRun.objects.count()
    form = {"kind": "sft", "base_model": "tiny-lm", "snapshot": mixed.pk, "config": '{"algorithm": {}}'}
    resp = _page(world).post(reverse("training:policy_create"), form, follow=True)
    assert resp.status_code == 200
    assert "no such snapshot" in resp.content.decode()
    assert TrainingRun.objects.count() == before


def test_evaluate_page_refuses_a_snapshot_with_a_hidden_project(world, mixed):
    url = reverse("training:reward_model_evaluate", args=[world.reward_model.pk])
    assert _page(world).post(url, {"snapshot": mixed.pk, "split": "test"}).status_code == 404
    assert not ModelEvaluation.objects.filter(snapshot=mixed).exists()


@pytest.mark.parametrize(
    "route", ["training:run_list", "training:policy_list", "training:reward_model_detail"]
)
def test_pickers_do_not_offer_a_snapshot_with_a_hidden_project(world, mixed, route):
    args = [world.reward_model.pk] if route.endswith("detail") else []
    page = _page(world).get(reverse(route, args=args)).content.decode()
    assert world.snapshot.name in page  # the visible snapshot is offered ...
    assert MIXED_NAME not in page  # ... the mixed one is not


def test_engineer_of_both_projects_may_use_the_mixed_snapshot(world, mixed):
    b = mixed.projects.exclude(pk=world.project.pk).get()
    b.memberships.create(user=world.users["engineer"], role=Role.ENGINEER)
    body = {"snapshot_id": mixed.pk, "base_model": "tiny"}
    assert (
        _api(world).post(reverse("training-run-list"), body, content_type="application/json").status_code
        == 202
    )
