"""Celery tasks of reward models (thin wrappers over ``training.rewardmodels.services`` and
``training.rewardmodels.task_scoring``); ``training.tasks`` puts the retraining check and the live-agreement refresh on the beat schedule."""

from __future__ import annotations

from celery import shared_task

from training.rewardmodels.services import live_agreements_refresh, retrain_due
from training.rewardmodels.sweeps import tasks as _sweep_tasks  # noqa: F401  (Celery registers the sweep step)
from training.rewardmodels.task_scoring import TASK_SCORING_TASK_NAME, task_scoring_run


@shared_task(name="training.runs.retrain")
def run_retrain_task(threshold: int | None = None) -> list[int]:
    """Queue a retrain for each project with enough new judgments; returns the new runs' ids."""
    return [run.pk for run in retrain_due(threshold=threshold)]


@shared_task(name="training.runs.live_agreement")
def live_agreement_task() -> list[dict]:
    """Measure every active reward model's agreement with new human votes (stored as history)."""
    return [
        {"reward_model": row.reward_model_id, "n": row.n, "accuracy": row.accuracy}
        for row in live_agreements_refresh()
    ]


@shared_task(name=TASK_SCORING_TASK_NAME)
def task_scoring_task(job_id: int) -> dict:
    """Score one project's open tasks with its active reward model (progress and outcome on the job row)."""
    job = task_scoring_run(job_id=job_id)
    return {"status": job.status, "scored": job.scored, "total": job.total}
