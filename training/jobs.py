"""Generic job machinery for training runs: an executor registry per run kind, a reporter that writes
progress / metrics / log lines to the ``TrainingRun`` row, and the run lifecycle (queued -> running ->
succeeded | failed | cancelled) with heartbeats so a dead worker never leaves a run "running" forever.

An executor is ``fn(run, reporter) -> dict``; ``EXECUTORS`` maps each run kind to the dotted path of its
executor, imported when a run of that kind starts: the web process never loads torch / trl, and this module
imports no executor (they import it for ``RunReporter``), so registration needs no import side effect.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from training.models import JobStatus, RunKind, RunMetric, TrainingRun

logger = logging.getLogger(__name__)

Executor = Callable[[TrainingRun, "RunReporter"], dict]
#: Run kind -> its executor: a dotted path (imported on first use) or, in tests, the callable itself.
EXECUTORS: dict[str, str | Executor] = {
    RunKind.REWARD: "training.rewardmodels.trainer.execute_reward_run",
    RunKind.SFT: "training.policy.executors.execute_sft_run",
    RunKind.PPO: "training.policy.executors.execute_ppo_run",
    RunKind.GRPO: "training.policy.executors.execute_grpo_run",
    RunKind.RLOO: "training.policy.executors.execute_rloo_run",
    RunKind.DPO: "training.policy.dpo_executor.execute_dpo_run",
    RunKind.BATTLE: "training.policy.battle_runs.execute_battle_run",
    RunKind.GATE: "training.policy.capability.executor.execute_gate_run",
}

#: Lines kept in ``TrainingRun.log_tail``.
LOG_TAIL_LINES = 200


class RunCancelled(Exception):
    """Raised inside an executor (by ``RunReporter.progress``) when a cancel was requested."""


def executor_for(kind: str) -> Executor | None:
    """The executor of runs of ``kind`` (importing its module the first time), or None if there is none."""
    executor = EXECUTORS.get(kind)
    if isinstance(executor, str):
        executor = import_string(executor)
    return executor


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class RunReporter:
    """Handed to executors: writes progress, metrics and log lines to the run's row.

    ``progress`` is throttled to one write per ``min_interval_s`` (the last step always writes) so that
    reporting costs little next to a training step; every write also checks ``cancel_requested``.
    """

    def __init__(self, run_id: int, *, min_interval_s: float = 0.5):
        self.run_id = run_id
        self.min_interval_s = min_interval_s
        self._t0 = time.monotonic()
        self._first_step: int | None = None
        self._last_write = 0.0

    def _rows(self):
        return TrainingRun.objects.filter(pk=self.run_id)

    def eta(self, step: int, total: int) -> float | None:
        if self._first_step is None:
            self._first_step, self._t0 = step, time.monotonic()
            return None
        done = step - self._first_step
        if done <= 0 or total <= 0:
            return None
        per_step = (time.monotonic() - self._t0) / done
        return max(0.0, per_step * (total - step))

    def progress(self, step: int, total: int) -> None:
        """Record ``step`` of ``total``; raises ``RunCancelled`` if a cancel was requested."""
        eta = self.eta(step, total)
        now = time.monotonic()
        if step < total and now - self._last_write < self.min_interval_s:
            return
        self._last_write = now
        self._rows().update(step=step, total_steps=total, eta_seconds=eta, heartbeat_at=timezone.now())
        self.check_cancel()

    def check_cancel(self) -> None:
        if self._rows().filter(cancel_requested=True).exists():
            raise RunCancelled("cancel requested")

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        """One ``RunMetric`` row; the latest value of each metric is kept in ``run.summary["latest"]``."""
        clean = {k: float(v) for k, v in values.items() if isinstance(v, int | float)}
        if not clean:
            return
        with transaction.atomic():
            RunMetric.objects.create(run_id=self.run_id, step=step, values=clean)
            run = self._rows().select_for_update().only("summary").get()
            summary = dict(run.summary or {})
            latest = dict(summary.get("latest") or {})
            latest.update(clean)
            latest["step"] = step
            summary["latest"] = latest
            self._rows().update(summary=summary, heartbeat_at=timezone.now())

    def log(self, line: str) -> None:
        """Append a line to the run's bounded log tail."""
        logger.info("run %s: %s", self.run_id, line)
        stamp = timezone.now().strftime("%H:%M:%S")
        with transaction.atomic():
            run = self._rows().select_for_update().only("log_tail").get()
            lines = (run.log_tail.splitlines() if run.log_tail else []) + [
                f"{stamp} {part}" for part in str(line).splitlines() or [""]
            ]
            self._rows().update(log_tail="\n".join(lines[-LOG_TAIL_LINES:]), heartbeat_at=timezone.now())

    def heartbeat(self) -> None:
        self._rows().update(heartbeat_at=timezone.now())


class _Heartbeat(threading.Thread):
    """Beats while the executor runs, so a long step or a model load is not mistaken for a dead worker.

    It dies with the process: a killed worker stops beating and the reaper fails the run."""

    def __init__(self, run_id: int, interval_s: float):
        super().__init__(name=f"run-{run_id}-heartbeat", daemon=True)
        self.run_id, self.interval_s = run_id, interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval_s):
                TrainingRun.objects.filter(pk=self.run_id, status=JobStatus.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        except Exception:  # a beat lost is not worth crashing the run for
            logger.exception("heartbeat of run %s stopped", self.run_id)
        finally:
            connection.close()


def _finish(run_id: int, status: str, reason: str = "", summary: dict | None = None) -> bool:
    """Move a running run to a final status; False if someone else (the reaper) finished it first."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != JobStatus.RUNNING:
            return False
        run.status, run.status_reason = status, reason[:4000]
        run.finished_at = timezone.now()
        run.eta_seconds = None if status != JobStatus.SUCCEEDED else 0.0
        if summary:
            run.summary = {**(run.summary or {}), **summary}
        run.save(update_fields=["status", "status_reason", "finished_at", "eta_seconds", "summary"])
    return True


def run_execute(*, run_id: int, executor: Executor | None = None) -> None:
    """Run a queued run in this process: mark it running, call its executor, record the outcome.

    ``executor`` replaces the run kind's own (a sweep trial is a reward run whose executor scores the
    validation split instead of evaluating on test and registering). A run that is not queued (already
    finished, reaped, or running elsewhere) is left alone, so a message redelivered by the broker after a
    worker crash does nothing.
    """
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, worker=worker_name(), started_at=now, heartbeat_at=now
    )
    if not claimed:
        logger.warning("run %s is not queued; not executing it", run_id)
        return
    run = TrainingRun.objects.get(pk=run_id)
    reporter = RunReporter(run_id)
    if run.cancel_requested:
        _finish(run_id, JobStatus.CANCELLED, "cancelled before it started")
        return
    executor = executor or executor_for(run.kind)
    if executor is None:
        _finish(run_id, JobStatus.FAILED, f"no executor registered for run kind '{run.kind}'")
        return
    beat = _Heartbeat(run_id, settings.PREFLAB_RUN_HEARTBEAT_S)
    beat.start()
    try:
        reporter.log(f"started on {worker_name()}")
        summary = executor(run, reporter) or {}
    except RunCancelled:
        reporter.log("cancelled")
        _finish(run_id, JobStatus.CANCELLED, "cancelled by request")
    except Exception as exc:
        logger.exception("run %s failed", run_id)
        tb = traceback.format_exc().strip().splitlines()
        try:
            reporter.log("\n".join(tb[-15:]))
        except Exception:
            logger.exception("could not write the log tail of run %s", run_id)
        _finish(run_id, JobStatus.FAILED, f"{type(exc).__name__}: {exc}")
    else:
        reporter.log("succeeded")
        _finish(run_id, JobStatus.SUCCEEDED, "", summary)
    finally:
        beat.stopped.set()
        beat.join(timeout=5)


def _publish_run(run_id: int) -> bool:
    """Send ``training.run.execute`` now; a broker outage is logged and leaves the run queued with no task
    id, for ``runs_requeue_delayed`` (beat) to publish once the broker is back. Never raises."""
    from celery import current_app

    try:
        result = current_app.send_task("training.run.execute", kwargs={"run_id": run_id}, retry=False)
    except Exception as exc:  # noqa: BLE001 - kombu raises several connection error types
        logger.warning("run %s stays queued: broker unreachable (%s)", run_id, exc)
        return False
    TrainingRun.objects.filter(pk=run_id).update(celery_task_id=result.id or "")
    return True


def run_enqueue(*, run_id: int) -> None:
    """Send ``training.run.execute`` for a queued run once the current transaction commits. A broker
    outage does not fail the caller (a web request): the run waits, queued, for the requeue job."""
    transaction.on_commit(lambda: _publish_run(run_id))


def runs_requeue_delayed(*, min_age_s: float = 30.0) -> int:
    """Publish again the queued runs a broker outage left unpublished (no task id) for ``min_age_s``.
    An extra message is harmless: a run no longer queued is left alone. Returns how many were published."""
    runs = TrainingRun.objects.filter(
        status=JobStatus.QUEUED,
        celery_task_id="",
        cancel_requested=False,
        created_at__lte=timezone.now() - timedelta(seconds=min_age_s),
    ).values_list("pk", flat=True)
    return sum(_publish_run(pk) for pk in list(runs))


def run_cancel_request(*, run_id: int, reason: str = "cancelled by request") -> TrainingRun:
    """Cancel a run: a queued one at once, a running one at its executor's next progress report."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.status == JobStatus.QUEUED:
            run.status, run.status_reason, run.finished_at = JobStatus.CANCELLED, reason, timezone.now()
            run.cancel_requested = True
            run.save(update_fields=["status", "status_reason", "finished_at", "cancel_requested"])
        elif run.status == JobStatus.RUNNING:
            run.cancel_requested = True
            run.save(update_fields=["cancel_requested"])
    return run


def run_reap_stale(*, max_silence_s: int = 120) -> int:
    """Fail runs marked running whose heartbeat is older than ``max_silence_s``; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=max_silence_s)
    reaped = 0
    stale = TrainingRun.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff)
    for run_id in stale.values_list("pk", flat=True):
        with transaction.atomic():
            run = TrainingRun.objects.select_for_update().get(pk=run_id)
            if run.status != JobStatus.RUNNING or run.heartbeat_at is None or run.heartbeat_at >= cutoff:
                continue
            silence = (timezone.now() - run.heartbeat_at).total_seconds()
            run.status = JobStatus.CANCELLED if run.cancel_requested else JobStatus.FAILED
            run.status_reason = (
                f"worker {run.worker or '?'} lost: no heartbeat for {silence:.0f}s "
                f"(limit {max_silence_s}s); the process was killed or crashed"
            )
            run.finished_at, run.eta_seconds = timezone.now(), None
            run.save(update_fields=["status", "status_reason", "finished_at", "eta_seconds"])
            reaped += 1
    return reaped
