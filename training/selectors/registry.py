"""Reward-model registry reads (the serving side uses ``reward_model_active``)."""

from __future__ import annotations

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
