"""Reward-model-guided task priority: the active reward model scores a project's open tasks in batches and
writes, per task, its predicted preference P(A better) = sigmoid(r_A - r_B) and an uncertainty
``priority_score = 1 - 2 |p - 0.5|`` (1: a coin flip for the model, 0: certain), which assignment serves first
under the project's ``serving_order`` "uncertainty" / "mix".

Encoding: the pairs go through ``training.rm_encoding.score_split``, the one scoring function that training,
evaluation and the promotion gate use, so a task is encoded exactly as the model's training pairs were.
Writes happen one batch per short transaction (``bulk_update`` of one batch of ``SCORE_BATCH`` rows), never one long
lock over the queue; between batches the job re-reads ``cancel_requested`` and records its progress.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.models import ComparisonTask, TaskStatus
from annotation.services.assignment import POOL_KINDS
from training.models import RewardModel, TaskScoringJob, TaskScoringStatus
from training.rewardmodels.selectors import reward_model_active

log = logging.getLogger(__name__)
TASK_SCORING_TASK_NAME = "training.task_scoring.run"

SCORE_BATCH = 256
# (rows, meta) -> (r_chosen, r_rejected, kept_rows, kept_meta, report), as training.rewardmodels.trainer.score_split.
PairScorer = Callable[[list[dict], list[dict]], tuple]


def uncertainty(p: float) -> float:
    """1 - 2|p - 0.5|: 1 when the model cannot tell A from B, 0 when it is certain."""
    return 1.0 - 2.0 * abs(p - 0.5)


def task_scoring_start(*, project, user=None, enqueue: bool = True) -> TaskScoringJob:
    """Queue a scoring job for the project's open tasks with its active reward model. A project without an
    active model cannot be scored (its tasks stay in queue order): a ValidationError says so."""
    reward_model = reward_model_active(project)
    if reward_model is None:
        raise ValidationError(
            {"project": "This project has no active reward model; its tasks are served in queue order."}
        )
    job = TaskScoringJob.objects.create(project=project, reward_model=reward_model, created_by=user)
    if enqueue:
        from config.jobs import enqueue as publish_later
        from config.jobs import task_by_name

        # by name: the task module imports this one (``TrainingConfig.ready`` registers it in every process)
        publish_later(task_by_name(TASK_SCORING_TASK_NAME), job.pk)
    return job


def task_scoring_cancel(*, job: TaskScoringJob) -> TaskScoringJob:
    """Ask a queued or running job to stop (between two batches)."""
    TaskScoringJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    job.refresh_from_db()
    return job


def _model_scorer(reward_model: RewardModel) -> PairScorer:
    from transformers import AutoTokenizer

    from training.rm_encoding import score_split
    from training.rm_ensemble import load_reward_model

    tokenizer = AutoTokenizer.from_pretrained(reward_model.artifact_dir)
    model = load_reward_model(reward_model.artifact_dir)

    def score(rows: list[dict], meta: list[dict]):
        return score_split(model, tokenizer, rows, meta, max_length=reward_model.max_length)

    return score


def _open_tasks(project_id: int):
    return ComparisonTask.objects.filter(project_id=project_id, status=TaskStatus.OPEN, kind__in=POOL_KINDS)


def task_scoring_run(*, job_id: int, batch_size: int = SCORE_BATCH, scorer: PairScorer | None = None):
    """Run a scoring job to the end (or until cancelled). ``scorer`` replaces the model (tests)."""
    with transaction.atomic():
        job = (
            TaskScoringJob.objects.select_for_update(of=("self",))
            .select_related("reward_model")
            .get(pk=job_id)
        )
        if job.status != TaskScoringStatus.QUEUED:
            return job
        if job.cancel_requested:
            job.status, job.finished_at = TaskScoringStatus.CANCELLED, timezone.now()
            job.save(update_fields=["status", "finished_at"])
            return job
        job.status = TaskScoringStatus.RUNNING
        job.total = _open_tasks(job.project_id).count()
        job.save(update_fields=["status", "total"])
    try:
        if job.reward_model is None:
            raise ValidationError("the job's reward model was deleted")
        scorer = scorer or _model_scorer(job.reward_model)
        last_id = 0
        while True:
            if TaskScoringJob.objects.filter(pk=job.pk, cancel_requested=True).exists():
                _finish(job, TaskScoringStatus.CANCELLED)
                return job
            batch = list(
                _open_tasks(job.project_id)
                .filter(pk__gt=last_id)
                .order_by("pk")
                .values("pk", "prompt__text", "candidate_a__text", "candidate_b__text")[:batch_size]
            )
            if not batch:
                break
            last_id = batch[-1]["pk"]
            rows = [
                {
                    "prompt": t["prompt__text"],
                    "chosen": t["candidate_a__text"],
                    "rejected": t["candidate_b__text"],
                }
                for t in batch
            ]
            r_a, r_b, _rows, kept_meta, _report = scorer(rows, [{"task_id": t["pk"]} for t in batch])
            updates = []
            for meta, ra, rb in zip(kept_meta, r_a, r_b, strict=True):
                p = 1.0 / (1.0 + math.exp(-(float(ra) - float(rb))))
                updates.append(
                    ComparisonTask(pk=meta["task_id"], predicted_preference=p, priority_score=uncertainty(p))
                )
            # One short statement per batch (autocommit): annotators are never kept waiting on these rows.
            ComparisonTask.objects.bulk_update(updates, ["predicted_preference", "priority_score"])
            job.scored += len(batch)
            TaskScoringJob.objects.filter(pk=job.pk).update(scored=job.scored)
        _finish(job, TaskScoringStatus.SUCCEEDED)
    except Exception as exc:
        log.exception("task scoring job %s failed", job.pk)
        _finish(job, TaskScoringStatus.FAILED, message=str(exc)[:2000])
        raise
    return job


def _finish(job: TaskScoringJob, status: str, message: str = "") -> None:
    job.status, job.finished_at, job.message = status, timezone.now(), message
    TaskScoringJob.objects.filter(pk=job.pk).update(
        status=status, finished_at=job.finished_at, message=message
    )
