"""Live agreement of the active reward model with new human votes: the periodic job stores measurements with
the model's test accuracy as baseline, the reward-model page and API show them, and a project that asks for it
is retrained once when the agreement drops far enough below the baseline (and only once per model)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.models import Judgment, Role
from tests.factories import add_member, make_project, make_task, make_user
from tests.training.runs.conftest import TINY_CONFIG
from training.datasets.services import snapshot_build, snapshot_create
from training.models import (
    JobStatus,
    LiveAgreement,
    ModelEvaluation,
    RewardModel,
    RunKind,
    TaskScoringJob,
    TaskScoringStatus,
    TrainingRun,
)
from training.rewardmodels.services import agreement_drop_due, retrain_due, reward_run_create
from training.rewardmodels.tasks import live_agreement_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.PREFLAB_RETRAIN_AFTER_JUDGMENTS = 0  # only the agreement drop may retrain here
    settings.PREFLAB_LIVE_AGREEMENT_MIN_VOTES = 6


def _trained_project(tiny_reward_model_dir, *, drop: float | None):
    """A project with a built snapshot, a finished reward run and its active model (test accuracy 0.8)."""
    project = make_project(retrain_agreement_drop=drop, overlap_k=1)
    annotator = make_user(Role.ANNOTATOR)
    add_member(project, annotator)
    for i in range(8):
        Judgment.objects.create(
            task=make_task(project, a=f"Good {i}", b=f"Bad {i}"), annotator=annotator, choice="A"
        )
    snapshot = snapshot_build(
        snapshot_id=snapshot_create(user=None, spec={"projects": [project.pk]}, name="d", enqueue=False).pk
    )
    assert snapshot.status == JobStatus.SUCCEEDED
    run = reward_run_create(snapshot=snapshot, base_model=str(tiny_reward_model_dir), config=TINY_CONFIG)
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.SUCCEEDED)
    rm = RewardModel.objects.create(
        project=project,
        version=1,
        run=run,
        snapshot=snapshot,
        base_model="tiny",
        artifact_dir=str(tiny_reward_model_dir),
        is_active=True,
    )
    ModelEvaluation.objects.create(
        reward_model=rm, snapshot=snapshot, split="test", metrics={"accuracy": 0.8}
    )
    TaskScoringJob.objects.create(project=project, reward_model=rm, status=TaskScoringStatus.SUCCEEDED)
    return project, rm, annotator


def _new_votes(project, annotator, *, right: int, wrong: int, random_right: int = 0):
    """Votes after the snapshot on tasks the model predicted 'A better' (p = 0.9)."""
    for choice, count, served_random in (("A", right, False), ("B", wrong, False), ("A", random_right, True)):
        for _ in range(count):
            task = make_task(project, predicted_preference=0.9)
            Judgment.objects.create(
                task=task, annotator=annotator, choice=choice, served_random=served_random
            )


def test_periodic_job_stores_a_measurement_with_the_test_accuracy_as_baseline(tiny_reward_model_dir):
    project, rm, annotator = _trained_project(tiny_reward_model_dir, drop=None)
    _new_votes(project, annotator, right=3, wrong=1, random_right=1)
    RewardModel.objects.create(project=project, version=2, base_model="x", artifact_dir="/x")  # not active
    out = live_agreement_task()
    assert out == [{"reward_model": rm.pk, "n": 5, "accuracy": 0.8}]
    row = LiveAgreement.objects.get()
    assert (row.reward_model_id, row.n, row.accuracy, row.random_n, row.random_accuracy) == (
        rm.pk,
        5,
        0.8,
        1,
        1.0,
    )
    assert row.baseline == 0.8 and row.drop == 0.0 and row.low < 0.8 < row.high


def test_agreement_drop_retrains_once_per_model(tiny_reward_model_dir):
    project, rm, annotator = _trained_project(tiny_reward_model_dir, drop=0.2)
    _new_votes(project, annotator, right=3, wrong=3)  # 0.5 live vs 0.8 test: a drop of 0.3
    live_agreement_task()
    assert agreement_drop_due(project).drop == pytest.approx(0.3)
    queued = retrain_due()
    assert [r.project_id for r in queued] == [project.pk]
    assert queued[0].snapshot.version == rm.snapshot.version + 1 and queued[0].kind == RunKind.REWARD
    # The retrain run finishes but its model is not promoted: the same old model does not retrain again.
    TrainingRun.objects.filter(pk=queued[0].pk).update(status=JobStatus.SUCCEEDED)
    live_agreement_task()
    assert agreement_drop_due(project) is None and retrain_due() == []


@pytest.mark.parametrize(
    ("drop", "right", "wrong", "why"),
    [
        (None, 3, 3, "the project did not ask for it"),
        (0.4, 3, 3, "a drop of 0.3 is below the project's 0.4"),
        (0.2, 2, 2, "4 votes are fewer than PREFLAB_LIVE_AGREEMENT_MIN_VOTES (6)"),
    ],
)
def test_no_retrain_without_a_large_enough_drop_on_enough_votes(
    tiny_reward_model_dir, drop, right, wrong, why
):
    project, _rm, annotator = _trained_project(tiny_reward_model_dir, drop=drop)
    _new_votes(project, annotator, right=right, wrong=wrong)
    live_agreement_task()
    assert agreement_drop_due(project) is None, why
    assert retrain_due() == [], why


def test_page_and_api_show_the_measurements(tiny_reward_model_dir, client):
    project, rm, annotator = _trained_project(tiny_reward_model_dir, drop=0.1)
    _new_votes(project, annotator, right=2, wrong=2)
    engineer = make_user(Role.ENGINEER)
    add_member(project, engineer, Role.ENGINEER)
    client.force_login(engineer)
    page = client.get(f"/reward-models/{rm.pk}/").content.decode()
    assert "Not measured yet" in page
    r = client.post(f"/reward-models/{rm.pk}/live-agreement/", follow=True)
    page = r.content.decode()
    assert r.status_code == 200 and "Live agreement measured on 4 new votes" in page
    assert "<strong>0.500</strong>" in page and "test accuracy 0.800" in page and "drop 0.300" in page
    api = APIClient()
    api.force_authenticate(engineer)
    body = api.get(f"/api/v1/reward-models/{rm.pk}/live-agreement/").json()
    assert body["all"]["accuracy"] == 0.5 and body["baseline"] == 0.8
    assert [(h["n"], h["accuracy"], h["drop"]) for h in body["history"]] == [(4, 0.5, 0.3)]


def test_the_drop_setting_is_validated():
    from annotation.models import Project

    admin = make_user(Role.ADMIN)
    project = make_project()
    api = APIClient()
    api.force_authenticate(admin)
    url = f"/api/v1/projects/{project.pk}/"
    bad = api.patch(url, {"retrain_agreement_drop": 1.5}, format="json")
    assert bad.status_code == 400 and "retrain_agreement_drop" in str(bad.json())
    assert api.patch(url, {"retrain_agreement_drop": 0.05}, format="json").status_code == 200
    assert Project.objects.get(pk=project.pk).retrain_agreement_drop == 0.05
