"""Reward-model runs through a real Celery worker process on Redis and PostgreSQL: snapshot -> run ->
metrics in the DB -> artifact -> registry -> promote; cancel; a worker killed mid-run is detected."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from tests.training.runs.conftest import TINY_CONFIG
from tests.training.runs.snapshot_files import synthetic_pairs, write_snapshot
from training.jobs import run_reap_stale
from training.models import JobStatus, ModelEvaluation, Promotion, RewardModel, RunMetric, TrainingRun
from training.rewardmodels.registry import PromotionGate, reward_model_promote
from training.rewardmodels.services import reward_run_create, run_cancel, run_retry

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.postgres,
]
REPO = Path(__file__).resolve().parents[2]
LONG_CONFIG = {**TINY_CONFIG, "max_steps": 100000}


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def celery_to_redis(redis_url):
    """Point this process's Celery app at the test Redis (the app may already have a broker pool)."""
    import redis

    from config.celery import app

    redis.Redis.from_url(redis_url).flushdb()  # no stale messages from earlier runs (our own db only)
    old = app.conf.broker_url
    app.conf.broker_url = redis_url
    app._pool = None
    app.amqp._producer_pool = None
    yield app
    app.conf.broker_url = old
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def start_worker(require_postgres, celery_to_redis, redis_url, tmp_path):
    procs: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": redis_url,
            "PREFLAB_DATA_DIR": str(tmp_path / "worker-data"),
            "PREFLAB_RUN_HEARTBEAT_S": "1",
            "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
        }
        cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "training,default", "-c", "1"]
        cmd += ["--pool", "solo", "-n", f"rm-test-{len(procs)}@%h", "--without-gossip", "--without-mingle"]
        cmd += ["-l", "info"]
        log = open(tmp_path / f"worker-{len(procs)}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(predicate, timeout: float, what: str, logs: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    tail = ""
    if logs is not None:
        tail = "\n".join(p.read_text()[-3000:] for p in sorted(logs.glob("worker-*.log")))
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def _run(pk: int) -> TrainingRun:
    return TrainingRun.objects.get(pk=pk)


@pytest.fixture
def snapshot(db):
    from tests.factories import make_project

    project = make_project()
    return write_snapshot(
        project,
        {"train": synthetic_pairs(16, seed=1), "validation": ([], []), "test": synthetic_pairs(12, seed=3)},
    )


@pytest.fixture
def built_snapshot(db, settings):
    """A snapshot built from real judgments by the snapshot services (the path users take)."""
    from annotation.models import Judgment, Role
    from tests.factories import add_member, make_project, make_task, make_user
    from training.datasets.services import snapshot_build, snapshot_create

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    project = make_project()
    annotator = make_user(Role.ANNOTATOR)
    add_member(project, annotator)
    for i in range(20):
        task = make_task(project, a=f"Sure, here is a careful answer {i}.", b=f"No {i}.")
        Judgment.objects.create(task=task, annotator=annotator, choice="A" if i % 4 else "B", strength=2)
    spec = {"projects": [project.pk], "split": {"train": 0.6, "validation": 0.0, "test": 0.4}}
    snapshot = snapshot_create(user=None, spec=spec, name="rm-e2e", enqueue=False)
    snapshot = snapshot_build(snapshot_id=snapshot.pk)
    assert snapshot.status == JobStatus.SUCCEEDED, snapshot.error
    return snapshot


def test_worker_runs_tiny_rm_end_to_end_then_promote(
    start_worker, built_snapshot, tiny_reward_model_dir, tmp_path
):
    snapshot = built_snapshot
    start_worker()
    run = reward_run_create(snapshot=snapshot, base_model=str(tiny_reward_model_dir), config=TINY_CONFIG)
    assert run.status == JobStatus.QUEUED
    wait_for(lambda: _run(run.pk).celery_task_id, 10, "the task id", tmp_path)
    done = wait_for(
        lambda: (r := _run(run.pk)).status in (JobStatus.SUCCEEDED, JobStatus.FAILED) and r,
        180,
        "the run",
        tmp_path,
    )
    assert done.status == JobStatus.SUCCEEDED, (done.status_reason, done.log_tail)
    assert done.worker.startswith(os.uname().nodename) and done.started_at and done.finished_at
    assert done.step == done.total_steps > 0
    assert RunMetric.objects.filter(run=run).count() == done.total_steps
    train_lines = (Path(snapshot.artifact_dir) / "trl" / "train.jsonl").read_text().splitlines()
    assert done.summary["data"]["train"]["pairs"] == len(train_lines) > 0
    assert done.summary["reward_model_version"] == 1

    rm = RewardModel.objects.get(run=run)
    assert (Path(rm.artifact_dir) / "model.safetensors").exists()
    assert ModelEvaluation.objects.filter(reward_model=rm, split="test").exists()

    # the gate: an impossible minimum is refused, a forced override is recorded, a passing gate promotes
    from training.rewardmodels.registry import PromotionRefused

    with pytest.raises(PromotionRefused):
        reward_model_promote(reward_model=rm, gate=PromotionGate(min_accuracy=1.01))
    promotion = reward_model_promote(reward_model=rm, gate=PromotionGate(min_accuracy=0.0))
    rm.refresh_from_db()
    assert rm.is_active and not promotion.forced and promotion.gate["passed"]
    assert Promotion.objects.filter(reward_model=rm).count() == 1


def test_cancel_running_job_in_worker(start_worker, snapshot, tiny_reward_model_dir, tmp_path):
    start_worker()
    run = reward_run_create(snapshot=snapshot, base_model=str(tiny_reward_model_dir), config=LONG_CONFIG)
    wait_for(lambda: _run(run.pk).step >= 2, 180, "the run to make progress", tmp_path)
    run_cancel(run=run)
    done = wait_for(
        lambda: (r := _run(run.pk)).status in (JobStatus.CANCELLED, JobStatus.FAILED) and r, 60, "cancel"
    )
    assert done.status == JobStatus.CANCELLED and done.status_reason == "cancelled by request"
    assert done.step < 100000
    assert not RewardModel.objects.filter(run=run).exists()


def test_killed_worker_is_detected_by_the_reaper(start_worker, snapshot, tiny_reward_model_dir, tmp_path):
    proc = start_worker()
    run = reward_run_create(snapshot=snapshot, base_model=str(tiny_reward_model_dir), config=LONG_CONFIG)
    wait_for(lambda: _run(run.pk).step >= 2, 180, "the run to make progress", tmp_path)
    assert run_reap_stale(max_silence_s=5) == 0  # alive: beating every second
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(3)
    assert _run(run.pk).status == JobStatus.RUNNING  # nobody told the database...
    assert run_reap_stale(max_silence_s=2) == 1  # ...until the reaper notices the silence
    dead = _run(run.pk)
    assert dead.status == JobStatus.FAILED
    assert "no heartbeat" in dead.status_reason and dead.worker in dead.status_reason
    # ...and it can be retried: a new run with the same spec, picked up by a fresh worker.
    retry = run_retry(run=dead)
    assert retry.retry_of_id == dead.pk and retry.config == dead.config and retry.status == JobStatus.QUEUED
    start_worker()
    wait_for(lambda: _run(retry.pk).step >= 2, 180, "the retried run to make progress", tmp_path)
    run_cancel(run=retry)
    done = wait_for(
        lambda: (r := _run(retry.pk)).status in (JobStatus.CANCELLED, JobStatus.FAILED) and r, 60, "cancel"
    )
    assert done.status == JobStatus.CANCELLED
