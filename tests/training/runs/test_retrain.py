"""The retraining trigger: nothing below the threshold of new judgments; at it, a new snapshot (built by the
snapshot services) and a queued reward run copying the last run's spec; a manual trigger forces it. The
periodic task (``training.runs.retrain``, run by beat) does the same for every trained project, once."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.models import Judgment, Role
from tests.factories import add_member, make_project, make_task, make_token, make_user
from tests.training.runs.conftest import TINY_CONFIG
from training.datasets.services import snapshot_build, snapshot_create
from training.models import DatasetSnapshot, JobStatus, TrainingRun
from training.rewardmodels.services import judgments_since_last_snapshot, retrain_check, reward_run_create
from training.rewardmodels.tasks import run_retrain_task
from training.tasks import EXPIRES_FLOOR_S

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


@pytest.fixture
def trained_project(tiny_reward_model_dir):
    """A project with 10 judged tasks (20 judgments), a ready snapshot of them and a finished reward run."""
    project = make_project()
    annotators = [make_user(Role.ANNOTATOR) for _ in range(2)]
    for user in annotators:
        add_member(project, user)
    _judge(project, annotators, 10)
    snapshot = snapshot_build(
        snapshot_id=snapshot_create(user=None, spec={"projects": [project.pk]}, name="rm", enqueue=False).pk
    )
    assert snapshot.status == JobStatus.SUCCEEDED
    first = reward_run_create(
        snapshot=snapshot, base_model=str(tiny_reward_model_dir), config=TINY_CONFIG, enqueue=False
    )
    TrainingRun.objects.filter(pk=first.pk).update(status=JobStatus.SUCCEEDED)
    return project, annotators, snapshot, first


def _finish(run_ids):
    TrainingRun.objects.filter(pk__in=run_ids).update(status=JobStatus.SUCCEEDED)


def test_periodic_task_retrains_after_n_new_judgments_once(trained_project):
    project, annotators, snapshot, first = trained_project
    assert run_retrain_task(threshold=5) == []  # no new judgments

    _judge(project, annotators, 2, start=10)  # 4 new judgments < 5
    assert run_retrain_task(threshold=5) == []
    assert DatasetSnapshot.objects.count() == 1 and TrainingRun.objects.count() == 1

    _judge(project, annotators, 1, start=12)  # 6 new judgments >= 5
    queued = run_retrain_task(threshold=5)
    assert len(queued) == 1
    run = TrainingRun.objects.get(pk=queued[0])
    assert run.status == JobStatus.QUEUED and run.project == project and run.retry_of == first
    assert run.base_model == first.base_model and run.config == first.config
    assert run.snapshot.status == JobStatus.SUCCEEDED and run.snapshot.version == snapshot.version + 1
    assert run.snapshot.projects.get() == project

    # idempotent: again without new judgments, nothing new, whether the run is still queued or finished
    assert run_retrain_task(threshold=5) == []
    _finish(queued)
    assert run_retrain_task(threshold=5) == []
    assert DatasetSnapshot.objects.count() == 2 and TrainingRun.objects.count() == 2


def test_periodic_task_waits_for_the_running_retrain_and_can_be_turned_off(trained_project):
    project, annotators, _, _ = trained_project
    _judge(project, annotators, 3, start=10)  # 6 new judgments
    assert run_retrain_task(threshold=0) == []  # 0 turns the automatic trigger off
    queued = run_retrain_task(threshold=5)
    assert len(queued) == 1

    _judge(project, annotators, 3, start=13)  # 6 more while the retrain run is still queued: wait for it
    assert run_retrain_task(threshold=5) == []
    _finish(queued)
    again = run_retrain_task(threshold=5)
    assert len(again) == 1 and again != queued
    assert TrainingRun.objects.count() == 3


def test_periodic_task_skips_projects_never_trained_and_is_on_the_beat_schedule():
    project = make_project()
    annotator = make_user(Role.ANNOTATOR)
    add_member(project, annotator)
    _judge(project, [annotator], 10)  # judgments but no reward run to copy: nothing to retrain
    assert run_retrain_task(threshold=1) == []
    assert TrainingRun.objects.count() == 0

    from config.celery import app

    assert app.conf.beat_schedule["training.runs.retrain"]["task"] == run_retrain_task.name
    # a periodic message expires (dropped behind a long run) but never sooner than the floor: with a short
    # period, a worker a little behind would otherwise drop every one of them
    for name in ("training.runs.reap", "training.runs.retrain", "training.runs.requeue"):
        entry = app.conf.beat_schedule[name]
        assert entry["options"]["expires"] == max(entry["schedule"], EXPIRES_FLOOR_S) >= 30


def test_retrain_api_route(trained_project):
    project, annotators, snapshot, first = trained_project
    engineer = make_user(Role.ENGINEER)
    add_member(project, engineer, Role.ENGINEER)
    url = f"/api/v1/projects/{project.pk}/retrain/"
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(engineer, ['train'])}")

    not_due = api.post(url, {"force": False, "threshold": 5}, format="json")
    assert not_due.status_code == 200 and not_due.json() == {"triggered": False}
    assert TrainingRun.objects.count() == 1

    created = api.post(url, {}, format="json")  # manual: forced by default
    assert created.status_code == 202, created.content
    body = created.json()
    run = TrainingRun.objects.get(pk=body["id"])
    assert body["status"] == "queued" and body["snapshot"] == run.snapshot_id != snapshot.pk
    assert run.project == project and run.retry_of == first and run.created_by == engineer
    assert DatasetSnapshot.objects.get(pk=body["snapshot"]).status == JobStatus.SUCCEEDED

    unscoped = APIClient()
    unscoped.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(engineer, ['annotate'])}")
    assert unscoped.post(url, {}, format="json").status_code == 403
    annotator_api = APIClient()
    annotator_api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(annotators[0], ['train'])}")
    assert annotator_api.post(url, {}, format="json").status_code == 403
    assert TrainingRun.objects.count() == 2


def test_a_project_setting_overrides_the_server_default(trained_project):
    project, annotators, _, _ = trained_project
    _judge(project, annotators, 2, start=10)  # 4 new judgments

    project.retrain_after_judgments = 0  # this project opted out: the default of 1 does not apply
    project.save(update_fields=["retrain_after_judgments"])
    assert run_retrain_task(threshold=1) == []

    project.retrain_after_judgments = 3  # its own threshold, even with the server default off
    project.save(update_fields=["retrain_after_judgments"])
    queued = run_retrain_task(threshold=0)
    assert len(queued) == 1 and TrainingRun.objects.get(pk=queued[0]).project == project


def test_the_threshold_is_a_project_setting_in_the_api(trained_project):
    project, *_ = trained_project
    engineer = make_user(Role.ENGINEER)
    add_member(project, engineer, Role.ENGINEER)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(engineer, ['train'])}")
    url = f"/api/v1/projects/{project.pk}/"
    assert api.get(url).json()["retrain_after_judgments"] is None
    bad = api.patch(url, {"retrain_after_judgments": -1}, format="json")
    assert bad.status_code == 400 and "retrain_after_judgments" in str(bad.json())
    ok = api.patch(url, {"retrain_after_judgments": 250}, format="json")
    assert ok.status_code == 200, ok.content
    project.refresh_from_db()
    assert project.retrain_after_judgments == 250
