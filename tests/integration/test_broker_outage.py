"""Redis down while engineers start jobs: nothing fails, the jobs wait queued, and once the broker is back
the requeue job (beat) publishes them to the real Redis queues."""

from __future__ import annotations

import pytest
import redis

from annotation.models import Choice, Judgment
from tests.factories import make_project, make_tasks, make_user
from tests.training.runs.snapshot_files import synthetic_pairs, write_snapshot
from training.datasets.services import snapshot_create
from training.models import DatasetSnapshot, JobStatus, TrainingRun
from training.rewardmodels.services import reward_run_create
from training.tasks import jobs_requeue_task

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _point_celery_at(url: str) -> None:
    from config.celery import app

    app.conf.broker_url = url
    app._pool = None  # forget the pools of the previous URL (kombu keeps them per connection)
    app.amqp._producer_pool = None


@pytest.fixture
def broker(redis_url, settings):
    from config.celery import app

    old = app.conf.broker_url
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    _point_celery_at(old)
    client.flushdb()


def _queued_messages(client: redis.Redis, queue: str) -> list[bytes]:
    return client.lrange(queue, 0, -1)


@pytest.mark.redis
@pytest.mark.slow
def test_jobs_started_while_redis_is_down_are_published_when_it_is_back(
    db, broker, redis_url, require_postgres, django_capture_on_commit_callbacks, tiny_reward_model_dir
):
    engineer = make_user("engineer")
    annotator = make_user("annotator")
    project = make_project(members=[(engineer, "engineer"), (annotator, "annotator")])
    for task in make_tasks(project, 3):
        Judgment.objects.create(task=task, annotator=annotator, choice=Choice.A)
    snapshot = write_snapshot(
        project,
        {"train": synthetic_pairs(8, seed=1), "validation": ([], []), "test": synthetic_pairs(4, seed=2)},
    )
    _point_celery_at(DEAD_REDIS)
    with django_capture_on_commit_callbacks(execute=True):  # the publish runs and fails: no exception
        run = reward_run_create(snapshot=snapshot, base_model=str(tiny_reward_model_dir))
        queued_snapshot = snapshot_create(user=engineer, spec={"projects": [project.pk]}, name="outage")
    run.refresh_from_db()
    assert run.status == JobStatus.QUEUED and run.celery_task_id == ""
    assert DatasetSnapshot.objects.get(pk=queued_snapshot.pk).status == JobStatus.QUEUED
    # While it is down, the requeue job fails softly too and publishes nothing.
    assert jobs_requeue_task(min_age_s=0, snapshot_min_age_s=0) == {"runs": 0, "snapshots": 0}

    _point_celery_at(redis_url)
    assert _queued_messages(broker, "training") == []
    assert jobs_requeue_task(min_age_s=0, snapshot_min_age_s=0) == {"runs": 1, "snapshots": 1}
    run.refresh_from_db()
    assert run.celery_task_id != ""
    training_queue = _queued_messages(broker, "training")
    default_queue = _queued_messages(broker, "default")
    assert len(training_queue) == 1 and run.celery_task_id.encode() in training_queue[0]
    assert any(f"snapshot-build-{queued_snapshot.pk}".encode() in m for m in default_queue)
    # Published runs are not published again; a run that left the queue is never re-sent.
    assert jobs_requeue_task(min_age_s=0, snapshot_min_age_s=3600)["runs"] == 0
    TrainingRun.objects.filter(pk=run.pk).update(celery_task_id="", status=JobStatus.CANCELLED)
    assert jobs_requeue_task(min_age_s=0, snapshot_min_age_s=3600)["runs"] == 0
