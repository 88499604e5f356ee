"""Web pages and API of runs and the registry, on a real tiny run executed in-process."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Role
from tests.factories import add_member, make_token, make_user
from tests.training.runs.conftest import TINY_CONFIG
from training import jobs
from training.models import JobStatus, Promotion, RewardModel
from training.rewardmodels.services import reward_run_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def engineer(project):
    user = make_user(Role.ENGINEER)
    add_member(project, user, Role.ENGINEER)
    return user


@pytest.fixture
def trained(tiny_snapshot, tiny_reward_model_dir):
    run = reward_run_create(
        snapshot=tiny_snapshot, base_model=str(tiny_reward_model_dir), config=TINY_CONFIG, enqueue=False
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.status_reason
    return run, RewardModel.objects.get(run=run)


def test_pages_show_runs_curves_report_compare_and_promote(client, engineer, trained, tiny_snapshot):
    run, rm = trained
    client.force_login(engineer)
    page = client.get(reverse("training:run_list")).content.decode()
    assert f"#{run.pk}" in page and "succeeded" in page and "Queue run" in page

    detail = client.get(reverse("training:run_detail", args=[run.pk])).content.decode()
    assert detail.count("<polyline") >= 3  # loss, accuracy, margin, lr curves with points
    assert "prompt-truncated" in detail and "Dropped (too long)" in detail

    live = client.get(reverse("training:run_live", args=[run.pk])).json()
    assert live["status"] == "succeeded" and live["step"] == live["total_steps"] == 4
    assert live["charts"]["loss"].startswith("<svg") and "polyline" in live["charts"]["loss"]
    assert "loss" in live["latest"]

    report = client.get(reverse("training:reward_model_detail", args=[rm.pk])).content.decode()
    assert "Reliability diagram" in report and "Accuracy by length difference" in report
    assert "model-a vs model-c" in report

    # a second model version to compare, promoted by force with a recorded reason
    rm2 = RewardModel.objects.create(
        project=rm.project, version=2, snapshot=rm.snapshot, base_model="x", artifact_dir=rm.artifact_dir
    )
    compare = client.get(reverse("training:reward_model_compare"), {"a": rm.pk, "b": rm2.pk}).content.decode()
    assert f"v{rm.version}" in compare and "v2" in compare and "accuracy" in compare

    response = client.post(
        reverse("training:reward_model_promote", args=[rm.pk]),
        {"min_accuracy": "1.01", "tolerance": "0.01"},
        follow=True,
    )
    assert "The gate refused" in response.content.decode()
    assert not RewardModel.objects.get(pk=rm.pk).is_active
    client.post(
        reverse("training:reward_model_promote", args=[rm.pk]),
        {"min_accuracy": "1.01", "force": "on", "reason": "demo"},
    )
    promotion = Promotion.objects.get(reward_model=rm)
    assert promotion.forced and promotion.reason == "demo" and promotion.promoted_by == engineer
    assert RewardModel.objects.get(pk=rm.pk).is_active


def test_pages_need_engineer_role(client, trained):
    run, _ = trained
    client.force_login(make_user(Role.ANNOTATOR))
    assert client.get(reverse("training:run_list")).status_code == 403
    assert client.get(reverse("training:run_live", args=[run.pk])).status_code == 403


def test_api_create_cancel_promote_and_scopes(engineer, trained, tiny_snapshot, tiny_reward_model_dir):
    run, rm = trained
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(engineer, ['train'])}")

    created = api.post(
        "/api/v1/runs/",
        {
            "snapshot_id": tiny_snapshot.pk,
            "base_model": str(tiny_reward_model_dir),
            "config": {"max_length": 64},
        },
        format="json",
    )
    assert created.status_code == 202 and created.json()["status"] == "queued"
    new_id = created.json()["id"]
    bad = api.post(
        "/api/v1/runs/",
        {"snapshot_id": tiny_snapshot.pk, "base_model": "x", "config": {"lr": 1}},
        format="json",
    )
    assert bad.status_code == 400 and bad.json()["error"]["fields"]["config.lr"]

    cancelled = api.post(f"/api/v1/runs/{new_id}/cancel/")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    assert api.post(f"/api/v1/runs/{new_id}/cancel/").status_code == 409

    metrics = api.get(f"/api/v1/runs/{run.pk}/metrics/", {"after_step": 2}).json()
    assert [p[0] for p in metrics["series"]["loss"]] == [3, 4]
    not_a_step = api.get(f"/api/v1/runs/{run.pk}/metrics/", {"after_step": "x"})
    assert not_a_step.status_code == 400 and "after_step" in not_a_step.json()["error"]["fields"]
    listed = api.get("/api/v1/runs/", {"status": "succeeded"}).json()
    assert [r["id"] for r in listed["results"]] == [run.pk]

    refused = api.post(f"/api/v1/reward-models/{rm.pk}/promote/", {"min_accuracy": 1.01}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "gate_failed"
    assert refused.json()["error"]["gate"]["passed"] is False
    forced = api.post(
        f"/api/v1/reward-models/{rm.pk}/promote/",
        {"min_accuracy": 1.01, "force": True, "reason": "x"},
        format="json",
    )
    assert forced.status_code == 200 and forced.json()["forced"] is True
    active = api.get(f"/api/v1/projects/{rm.project_id}/reward-model/").json()
    assert active["id"] == rm.pk and active["card"]["version"] == 1

    detail = api.get(f"/api/v1/reward-models/{rm.pk}/").json()
    assert detail["evaluations"][0]["metrics"]["n"] == 12

    scoped = APIClient()
    scoped.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(engineer, ['annotate'])}")
    assert scoped.get("/api/v1/runs/").status_code == 403
