"""The generic job lifecycle (in-process): executor outcome -> run status, metrics, log tail, cancel, reaper."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from training import jobs
from training.models import JobStatus, RunKind, RunMetric, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def executor_kind(monkeypatch):
    """A spare kind whose entry in the executor map a test replaces; restored afterwards."""
    monkeypatch.setitem(jobs.EXECUTORS, "grpo", jobs.EXECUTORS["grpo"])
    return "grpo"


def register(kind: str):
    """Map ``kind`` to the decorated test executor (the fixture restores the real one)."""

    def decorator(fn):
        jobs.EXECUTORS[kind] = fn
        return fn

    return decorator


def test_every_run_kind_has_an_executor_in_the_map():
    """The map is explicit: each kind resolves to a callable without importing any module beforehand."""
    for kind in RunKind.values:
        assert callable(jobs.executor_for(kind)), kind
    assert jobs.executor_for("nope") is None


def test_success_records_progress_metrics_log_and_summary(executor_kind):
    @register(executor_kind)
    def _ok(run, reporter):
        for step in range(1, 4):
            reporter.progress(step, 3)
            reporter.log_metrics(step, {"loss": 1.0 / step, "note": "ignored"})
        reporter.log("hello\nworld")
        return {"final_loss": 1 / 3}

    run = TrainingRun.objects.create(kind=executor_kind, base_model="x")
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.status_reason
    assert (run.step, run.total_steps) == (3, 3)
    assert run.worker and run.started_at and run.finished_at and run.heartbeat_at
    assert run.summary["final_loss"] == pytest.approx(1 / 3)
    assert run.summary["latest"]["loss"] == pytest.approx(1 / 3)
    assert list(RunMetric.objects.filter(run=run).values_list("step", flat=True)) == [1, 2, 3]
    assert "note" not in RunMetric.objects.filter(run=run).first().values
    assert "hello" in run.log_tail and "world" in run.log_tail

    jobs.run_execute(run_id=run.pk)  # a redelivered message does nothing to a finished run
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED


def test_failure_records_reason_and_traceback(executor_kind):
    @register(executor_kind)
    def _boom(run, reporter):
        raise ValueError("bad data in row 7")

    run = TrainingRun.objects.create(kind=executor_kind, base_model="x")
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert run.status_reason == "ValueError: bad data in row 7"
    assert "Traceback" in run.log_tail


def test_unknown_kind_fails_with_reason(monkeypatch):
    run = TrainingRun.objects.create(kind="rloo", base_model="x")
    monkeypatch.delitem(jobs.EXECUTORS, "rloo", raising=False)  # restored after: later tests run rloo
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert "no executor" in run.status_reason


def test_cancel_while_running_stops_at_next_progress(executor_kind):
    seen = []

    @register(executor_kind)
    def _long(run, reporter):
        for step in range(1, 100):
            if step == 5:
                jobs.run_cancel_request(run_id=run.pk)
            reporter.progress(step, 99)
            seen.append(step)
        return {}

    run = TrainingRun.objects.create(kind=executor_kind, base_model="x")
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED
    assert run.status_reason == "cancelled by request"
    assert max(seen) < 99


def test_cancel_queued_run_is_immediate():
    run = TrainingRun.objects.create(kind="reward", base_model="x")
    jobs.run_cancel_request(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and run.finished_at
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED


def test_reaper_fails_silent_running_runs_only():
    old = timezone.now() - timezone.timedelta(seconds=300)
    stale = TrainingRun.objects.create(
        kind="reward", base_model="x", status=JobStatus.RUNNING, heartbeat_at=old, worker="w:1"
    )
    fresh = TrainingRun.objects.create(
        kind="reward", base_model="x", status=JobStatus.RUNNING, heartbeat_at=timezone.now()
    )
    done = TrainingRun.objects.create(
        kind="reward", base_model="x", status=JobStatus.SUCCEEDED, heartbeat_at=old
    )
    assert jobs.run_reap_stale(max_silence_s=120) == 1
    stale.refresh_from_db(), fresh.refresh_from_db(), done.refresh_from_db()
    assert (
        stale.status == JobStatus.FAILED
        and "no heartbeat" in stale.status_reason
        and "w:1" in stale.status_reason
    )
    assert fresh.status == JobStatus.RUNNING
    assert done.status == JobStatus.SUCCEEDED


def test_progress_writes_an_eta_from_the_measured_step_time(executor_kind):
    seen: list[tuple[int, float | None]] = []

    @register(executor_kind)
    def _timed(run, reporter):
        reporter.min_interval_s = 0.0  # write every step
        for step in range(1, 5):
            if step > 1:
                time.sleep(0.2)  # each step after the first takes ~0.2 s
            reporter.progress(step, 10)
            row = TrainingRun.objects.get(pk=run.pk)
            seen.append((row.step, row.eta_seconds))
        return {}

    run = TrainingRun.objects.create(kind=executor_kind, base_model="x")
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.status_reason
    assert seen[0] == (1, None)  # no step time measured yet
    step, eta = seen[-1]  # 3 steps took ~0.6 s: 6 steps left at ~0.2 s
    assert step == 4 and 6 * 0.2 * 0.95 <= eta < 6 * 0.2 * 3  # sleeps are a floor; a busy box adds a little
    assert seen[1][1] > seen[-1][1]  # the ETA falls as steps complete
    assert run.eta_seconds == 0.0  # a finished run has nothing left
