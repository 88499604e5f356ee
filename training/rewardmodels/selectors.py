"""Reward-model registry reads (the serving side uses ``reward_model_active``)."""

from __future__ import annotations

import math

from django.db.models import QuerySet

from training.models import ModelEvaluation, Promotion, RewardModel


def reward_model_active(project) -> RewardModel | None:
    """The active reward model of a project (object or id), or None."""
    return RewardModel.objects.filter(project=project, is_active=True).select_related("project").first()


def reward_model_list(*, projects=None) -> QuerySet[RewardModel]:
    qs = RewardModel.objects.select_related("project", "snapshot", "run")
    return qs.filter(project__in=projects) if projects is not None else qs


def reward_model_evaluations(reward_model: RewardModel) -> QuerySet[ModelEvaluation]:
    return reward_model.evaluations.select_related("snapshot").order_by("-id")


def evaluation_for(reward_model: RewardModel, snapshot_id: int | None = None, split: str = "test"):
    """The latest evaluation of a model (on a given snapshot if asked), or None."""
    qs = reward_model_evaluations(reward_model).filter(split=split)
    if snapshot_id is not None:
        qs = qs.filter(snapshot_id=snapshot_id)
    return qs.first()


def promotion_list(*, project=None) -> QuerySet[Promotion]:
    qs = Promotion.objects.select_related("reward_model", "previous", "promoted_by", "project")
    return qs.filter(project=project) if project is not None else qs


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(centre - half, 4), round(centre + half, 4)


def reward_model_live_agreement(reward_model: RewardModel) -> dict:
    """Accuracy of the model's stored predictions (``ComparisonTask.predicted_preference``, written by its
    task-scoring job) on human A/B judgments made after its snapshot was taken, with a 95% Wilson interval;
    ``random_share`` restricts to judgments served at random (``served_random``), the unbiased sample when
    tasks are served uncertainty-first. Ties and "both bad" are left out. Empty until a scoring job of this
    model has succeeded (predictions may otherwise be another model's).

    One aggregate query (counts in PostgreSQL), so its memory does not grow with the number of votes."""
    from django.db.models import Count, Q

    from annotation.models import Judgment, JudgmentSource
    from training.models import TaskScoringJob, TaskScoringStatus

    since = reward_model.snapshot.created_at if reward_model.snapshot_id else reward_model.created_at
    scored = TaskScoringJob.objects.filter(
        reward_model=reward_model, status=TaskScoringStatus.SUCCEEDED
    ).exists()
    counts = {"n": 0, "k": 0, "rn": 0, "rk": 0}
    if scored:
        right = Q(choice="A", task__predicted_preference__gt=0.5) | Q(
            choice="B", task__predicted_preference__lte=0.5
        )
        counts = Judgment.objects.filter(
            task__project_id=reward_model.project_id,
            created_at__gt=since,
            source=JudgmentSource.HUMAN,
            choice__in=["A", "B"],
            task__predicted_preference__isnull=False,
        ).aggregate(
            n=Count("id"),
            k=Count("id", filter=right),
            rn=Count("id", filter=Q(served_random=True)),
            rk=Count("id", filter=Q(served_random=True) & right),
        )

    def summary(k: int, n: int) -> dict:
        low, high = _wilson(k, n)
        return {"n": n, "accuracy": round(k / n, 4) if n else None, "low": low, "high": high}

    return {
        "since": since,
        "scored": scored,
        "all": summary(counts["k"], counts["n"]),
        "random_share": summary(counts["rk"], counts["rn"]),
    }


def live_agreement_history(reward_model: RewardModel, *, limit: int = 50) -> QuerySet:
    """The stored live-agreement measurements of a model, newest first (the periodic job writes them)."""
    from training.models import LiveAgreement

    return LiveAgreement.objects.filter(reward_model=reward_model).order_by("-id")[:limit]


def reward_model_test_accuracy(reward_model: RewardModel) -> float | None:
    """The model's accuracy on the test split of its own snapshot (its latest evaluation there), or None."""
    evaluation = evaluation_for(reward_model, reward_model.snapshot_id)
    value = (evaluation.metrics or {}).get("accuracy") if evaluation else None
    return float(value) if isinstance(value, (int, float)) else None
