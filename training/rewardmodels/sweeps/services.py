"""Reward-model sweep writes: create (config checked, Optuna study made), one step of work (ask a trial,
train it as a reward run, tell its validation score), the final evaluation of the chosen config on the test
split, cancel and resume.

How work is shared: each step is one Celery task (``training.run.sweep_trial``) that runs one trial and then
queues the next step. ``parallelism`` steps are queued at the start, so that many trials run at once on
whichever training workers take them; the study lives in the database, so each ask sees every trial told
so far, whichever worker ran it. A step, not a whole ``study.optimize`` loop, is the unit of work: a worker
lost mid-trial loses one trial (the reaper fails its run, the next step tells Optuna so) and the sweep's
trials take turns on the training queue with other runs instead of holding a worker for hours.
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from training import jobs
from training.configs import ConfigError
from training.datasets.reader import read_snapshot_split
from training.models import (
    FINISHED_STATUSES,
    DatasetSnapshot,
    JobStatus,
    ModelEvaluation,
    RewardModelSweep,
    SweepTrial,
    TrainingRun,
    TrialState,
    check_seed,
)
from training.rewardmodels.services import reward_run_create
from training.rewardmodels.sweeps import study as studies
from training.rewardmodels.sweeps.config import SweepConfig, base_params, sweep_config_parse, trial_config
from training.rewardmodels.sweeps.trial import OBJECTIVE_SPLIT, execute_sweep_trial

logger = logging.getLogger(__name__)

#: Celery task name of one step (``training.run.*`` is routed to the ``training`` queue).
SWEEP_STEP_TASK = "training.run.sweep_trial"
LIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def sweep_config(sweep: RewardModelSweep) -> SweepConfig:
    return sweep_config_parse(sweep.config)


def _has_validation_pairs(snapshot: DatasetSnapshot) -> bool:
    counted = (snapshot.counts or {}).get(OBJECTIVE_SPLIT)
    if isinstance(counted, int):
        return counted > 0
    rows, _ = read_snapshot_split(snapshot.artifact_dir, OBJECTIVE_SPLIT)
    return bool(rows)


def sweep_create(
    *,
    snapshot: DatasetSnapshot,
    base_model: str,
    config: dict[str, Any] | SweepConfig | None = None,
    seed: int = 42,
    project=None,
    user=None,
    enqueue: bool = True,
) -> RewardModelSweep:
    """Check everything, then write the sweep row and its Optuna study and queue ``parallelism`` steps.
    A bad config, snapshot or seed is a ``ValidationError`` naming its field, before anything is written."""
    if snapshot.status != JobStatus.SUCCEEDED:
        raise ValidationError({"snapshot": f"snapshot {snapshot} is not ready ({snapshot.status})"})
    if not base_model:
        raise ValidationError({"base_model": "a base model (Hugging Face id or directory) is required"})
    check_seed(seed)
    try:
        cfg = sweep_config_parse(config)
    except ConfigError as exc:
        raise ValidationError(exc.prefixed("config")) from exc
    if not _has_validation_pairs(snapshot):
        raise ValidationError(
            {"snapshot": f"snapshot {snapshot} has no validation pairs: trials are scored on them"}
        )
    with transaction.atomic():
        sweep = RewardModelSweep.objects.create(
            project=project or snapshot.projects.order_by("pk").first(),
            snapshot=snapshot,
            base_model=base_model,
            config=cfg.to_dict(),
            seed=seed,
            study_name=f"preflab-rm-sweep-{uuid.uuid4().hex[:16]}",
            created_by=user if user is not None and user.is_authenticated else None,
        )
        first = base_params(cfg) if cfg.start_from_base else None
        studies.study_create(name=sweep.study_name, cfg=cfg, first_params=first)
        if enqueue:
            sweep_enqueue(sweep=sweep, steps=cfg.parallelism)
    return sweep


def _publish_step(sweep_id: int) -> None:
    from celery import current_app

    try:
        current_app.send_task(SWEEP_STEP_TASK, kwargs={"sweep_id": sweep_id}, retry=False)
    except Exception as exc:  # noqa: BLE001 - kombu raises several connection error types
        logger.warning("sweep %s: step not queued, broker unreachable (%s); resume it later", sweep_id, exc)


def sweep_enqueue(*, sweep: RewardModelSweep, steps: int = 1) -> None:
    """Queue ``steps`` sweep steps once the current transaction commits."""
    for _ in range(steps):
        transaction.on_commit(lambda: _publish_step(sweep.pk))


def _trial_record(trial: SweepTrial, study) -> None:
    """Copy a finished trial run's outcome to the trial row and tell Optuna (idempotent)."""
    import optuna

    run = TrainingRun.objects.get(pk=trial.run_id)
    if trial.state != TrialState.RUNNING or run.status in LIVE:
        return
    validation = (run.summary or {}).get("validation") or {}
    objective = sweep_config(trial.sweep).objective
    value = validation.get(objective)
    if run.status == JobStatus.SUCCEEDED and value is not None and math.isfinite(value):
        study.tell(trial.number, value, skip_if_finished=True)
        trial.state, trial.value, trial.validation = TrialState.COMPLETE, value, validation
    else:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        cancelled = run.status == JobStatus.CANCELLED
        trial.state = TrialState.CANCELLED if cancelled else TrialState.FAILED
    trial.save(update_fields=["state", "value", "validation"])


def _reconcile(sweep: RewardModelSweep, study) -> None:
    """Record the trials whose runs ended without their step doing it (a lost worker, a cancel)."""
    for trial in sweep.trials.filter(state=TrialState.RUNNING).select_related("sweep"):
        _trial_record(trial, study)


def sweep_trial_start(*, sweep_id: int) -> SweepTrial | None:
    """Ask the study for the next trial and create its reward run (queued); None when no trial is due."""
    with transaction.atomic():
        sweep = RewardModelSweep.objects.select_for_update().get(pk=sweep_id)
        if sweep.status not in LIVE or sweep.cancel_requested:
            return None
        cfg = sweep_config(sweep)
        counted = sweep.trials.exclude(state=TrialState.CANCELLED).count()
        if counted >= cfg.n_trials:
            return None
        study = studies.study_load(
            name=sweep.study_name, cfg=cfg, seed=sweep.seed, trial_number=sweep.trials.count()
        )
        _reconcile(sweep, study)
        asked = study.ask(fixed_distributions=studies.distributions(cfg))
        try:
            run = reward_run_create(
                snapshot=sweep.snapshot,
                base_model=sweep.base_model,
                config=trial_config(cfg.base, asked.params),
                seed=sweep.seed,
                project=sweep.project,
                user=sweep.created_by,
                enqueue=False,
            )
        except Exception:
            study.tell(asked.number, state=_fail_state(), skip_if_finished=True)
            raise
        # Never published as an ordinary run: the requeue job only publishes runs without a task id.
        TrainingRun.objects.filter(pk=run.pk).update(celery_task_id=f"sweep-{sweep.pk}")
        trial = SweepTrial.objects.create(sweep=sweep, run=run, number=asked.number, params=asked.params)
        if sweep.status == JobStatus.QUEUED:
            sweep.status = JobStatus.RUNNING
            sweep.save(update_fields=["status"])
    return trial


def _fail_state():
    import optuna

    return optuna.trial.TrialState.FAIL


def sweep_trial_finish(*, trial: SweepTrial) -> SweepTrial:
    """Record a trial whose run has finished, and the study's best trial so far on the sweep."""
    with transaction.atomic():
        sweep = RewardModelSweep.objects.select_for_update().get(pk=trial.sweep_id)
        cfg = sweep_config(sweep)
        study = studies.study_load(name=sweep.study_name, cfg=cfg, seed=sweep.seed)
        trial = SweepTrial.objects.select_related("sweep").get(pk=trial.pk)
        _trial_record(trial, study)
        best = sweep.trials.filter(state=TrialState.COMPLETE).exclude(value__isnull=True)
        best = best.order_by("-value" if cfg.objective == "accuracy" else "value", "number").first()
        if best is not None:
            sweep.best_trial_number, sweep.best_value = best.number, best.value
            sweep.save(update_fields=["best_trial_number", "best_value"])
    return trial


def _finalize_claim(sweep_id: int) -> TrainingRun | None:
    """If every trial is done and no final run exists, create it (the chosen config, queued); else None."""
    with transaction.atomic():
        sweep = RewardModelSweep.objects.select_for_update().get(pk=sweep_id)
        if sweep.status not in LIVE or sweep.cancel_requested or sweep.final_run_id is not None:
            return None
        cfg = sweep_config(sweep)
        trials = sweep.trials.exclude(state=TrialState.CANCELLED)
        if trials.count() < cfg.n_trials or trials.filter(state=TrialState.RUNNING).exists():
            return None
        best = trials.filter(state=TrialState.COMPLETE, number=sweep.best_trial_number).first()
        if best is None:
            _sweep_finish(sweep, JobStatus.FAILED, "no trial completed: nothing to choose")
            return None
        sweep.chosen_config = TrainingRun.objects.get(pk=best.run_id).config
        run = reward_run_create(
            snapshot=sweep.snapshot,
            base_model=sweep.base_model,
            config=sweep.chosen_config,
            seed=sweep.seed,
            project=sweep.project,
            user=sweep.created_by,
            enqueue=False,
        )
        TrainingRun.objects.filter(pk=run.pk).update(celery_task_id=f"sweep-{sweep.pk}")
        sweep.final_run = run
        sweep.save(update_fields=["chosen_config", "final_run"])
    return run


def _sweep_finish(sweep: RewardModelSweep, status: str, reason: str = "") -> None:
    sweep.status, sweep.status_reason, sweep.finished_at = status, reason[:4000], timezone.now()
    sweep.save(update_fields=["status", "status_reason", "finished_at"])


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95 % by default); None for n = 0."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def sweep_finalize(*, sweep_id: int) -> RewardModelSweep | None:
    """When the trials are done: train the chosen config once more as an ordinary reward run (registered),
    whose evaluation is the sweep's one read of the test split, and record it. None if not due."""
    run = _finalize_claim(sweep_id)
    if run is None:
        return None
    jobs.run_execute(run_id=run.pk)  # the reward executor: train, evaluate on test, register
    run.refresh_from_db()
    with transaction.atomic():
        sweep = RewardModelSweep.objects.select_for_update().get(pk=sweep_id)
        if run.status != JobStatus.SUCCEEDED:
            if sweep.status in LIVE:
                status = JobStatus.CANCELLED if run.status == JobStatus.CANCELLED else JobStatus.FAILED
                _sweep_finish(sweep, status, f"final run {run.pk} {run.status}: {run.status_reason}")
            return sweep
        evaluation = ModelEvaluation.objects.filter(
            reward_model_id=run.summary.get("reward_model_id")
        ).first()
        metrics = evaluation.metrics if evaluation else run.summary.get("eval", {})
        accuracy, n = metrics.get("accuracy"), int(metrics.get("n") or 0)
        interval = wilson_interval(accuracy * n, n) if accuracy is not None else None
        sweep.test_result = {
            "split": evaluation.split if evaluation else "test",
            "run_id": run.pk,
            "reward_model_id": run.summary.get("reward_model_id"),
            "reward_model_version": run.summary.get("reward_model_version"),
            "accuracy": accuracy,
            "accuracy_ci95": list(interval) if interval else None,
            "n": n,
            "mean_margin": metrics.get("mean_margin"),
            "ece": metrics.get("ece"),
            "length_correlation": metrics.get("length_correlation"),
            "train_seconds": run.summary.get("train_seconds"),
        }
        sweep.test_evaluations += 1
        sweep.save(update_fields=["test_result", "test_evaluations"])
        if sweep.status in LIVE:
            _sweep_finish(sweep, JobStatus.SUCCEEDED)
    return sweep


def sweep_step(*, sweep_id: int) -> bool:
    """One unit of a sweep's work in this process: run the next trial, or the final evaluation when every
    trial is done. True if a trial ran (so another step may be due)."""
    trial = sweep_trial_start(sweep_id=sweep_id)
    if trial is None:
        sweep_finalize(sweep_id=sweep_id)
        return False
    jobs.run_execute(run_id=trial.run_id, executor=execute_sweep_trial)
    sweep_trial_finish(trial=trial)
    return True


def sweep_work(*, sweep_id: int) -> RewardModelSweep:
    """Run steps in this process until none is due (tests, the benchmark, a sweep without a broker)."""
    while sweep_step(sweep_id=sweep_id):
        pass
    return RewardModelSweep.objects.get(pk=sweep_id)


def sweep_cancel(*, sweep: RewardModelSweep, reason: str = "cancelled by request") -> RewardModelSweep:
    """Stop a sweep: no new trial starts; its queued or running trial runs (and final run) are cancelled
    through the ordinary run cancel (a running one stops at its next training step)."""
    with transaction.atomic():
        sweep = RewardModelSweep.objects.select_for_update().get(pk=sweep.pk)
        if sweep.status in FINISHED_STATUSES:
            raise ValidationError({"status": f"sweep {sweep.pk} is already {sweep.status}"})
        sweep.cancel_requested = True
        sweep.save(update_fields=["cancel_requested"])
        _sweep_finish(sweep, JobStatus.CANCELLED, reason)
        live = TrainingRun.objects.filter(status__in=LIVE, sweep_trial__sweep=sweep).values_list(
            "pk", flat=True
        )
        run_ids = [*live, *([sweep.final_run_id] if sweep.final_run_id else [])]
    for run_id in run_ids:
        jobs.run_cancel_request(run_id=run_id, reason=f"sweep {sweep.pk} cancelled")
    return sweep


def sweep_resume(*, sweep: RewardModelSweep, enqueue: bool = True) -> RewardModelSweep:
    """Go on with a cancelled, failed or stalled sweep: the same Optuna study (trial numbers go on),
    cancelled trials run again. A stalled sweep is one marked running with no trial or final run live
    (its steps were lost with a worker)."""
    with transaction.atomic():
        sweep = RewardModelSweep.objects.select_for_update().get(pk=sweep.pk)
        live_runs = TrainingRun.objects.filter(status__in=LIVE, sweep_trial__sweep=sweep).exists() or (
            sweep.final_run_id is not None and sweep.final_run.status in LIVE
        )
        if sweep.status == JobStatus.SUCCEEDED or (sweep.status in LIVE and live_runs):
            raise ValidationError({"status": f"sweep {sweep.pk} is {sweep.status}: nothing to resume"})
        if sweep.final_run_id is not None and sweep.final_run.status != JobStatus.SUCCEEDED:
            sweep.final_run = None  # the final evaluation did not finish: it runs again
        sweep.status, sweep.status_reason, sweep.cancel_requested = JobStatus.RUNNING, "", False
        sweep.finished_at = None
        sweep.save(update_fields=["status", "status_reason", "cancel_requested", "finished_at", "final_run"])
        if enqueue:
            sweep_enqueue(sweep=sweep, steps=sweep_config(sweep).parallelism)
    return sweep
