"""Celery task of reward-model-guided task priority (a thin wrapper over ``training.services.task_scoring``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="training.task_scoring.run")
def task_scoring_task(job_id: int) -> dict:
    from training.services.task_scoring import task_scoring_run

    job = task_scoring_run(job_id=job_id)
    return {"status": job.status, "scored": job.scored, "total": job.total}
