"""The retraining trigger: nothing below the threshold of new judgments; at it, a new snapshot (built by the
snapshot services) and a queued reward run copying the last run's spec; a manual trigger forces it."""

from __future__ import annotations

import pytest

from annotation.models import Judgment, Role
from tests.factories import add_member, make_project, make_task, make_user
from tests.training.runs.conftest import TINY_CONFIG
from training.models import JobStatus, TrainingRun
from training.services.runs import judgments_since_last_snapshot, retrain_check, reward_run_create
from training.services.snapshots import snapshot_build, snapshot_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _judge(project, annotators, n: int, start: int = 0):
    for i in range(start, start + n):
        task = make_task(project, a=f"Good detailed answer {i}", b=f"Bad {i}")
        for user in annotators:
            Judgment.objects.create(task=task, annotator=user, choice="A", strength=2)


def test_retrain_after_n_new_judgments(tiny_reward_model_dir):
    project = make_project()
    annotators = [make_user(Role.ANNOTATOR) for _ in range(2)]
    for user in annotators:
        add_member(project, user)
    _judge(project, annotators, 10)
    snapshot = snapshot_create(user=None, spec={"projects": [project.pk]}, name="rm-data", enqueue=False)
    snapshot = snapshot_build(snapshot_id=snapshot.pk)
    assert snapshot.status == JobStatus.SUCCEEDED
    first = reward_run_create(snapshot=snapshot, base_model=str(tiny_reward_model_dir), config=TINY_CONFIG)

    _judge(project, annotators, 2, start=10)  # 4 new judgments
    assert judgments_since_last_snapshot(project=project)[0] == 4
    assert retrain_check(project=project, threshold=5) is None
    assert TrainingRun.objects.count() == 1

    _judge(project, annotators, 1, start=12)  # 6 new judgments >= 5
    run = retrain_check(project=project, threshold=5)
    assert run is not None and run.status == JobStatus.QUEUED
    assert run.retry_of == first and run.config == first.config and run.base_model == first.base_model
    assert run.snapshot != snapshot and run.snapshot.version == snapshot.version + 1
    assert run.snapshot.status == JobStatus.SUCCEEDED
    assert judgments_since_last_snapshot(project=project)[0] == 0

    manual = retrain_check(project=project, threshold=5, force=True)  # manual trigger ignores the count
    assert manual is not None and manual.snapshot.version == snapshot.version + 2
