"""Keep the lineage cards in artefact directories current: after a commit that registers a reward model,
adds an evaluation or a promotion to one, or finishes a run successfully, its card is written again.
Connected in ``TrainingConfig.ready``; the registry and the job runner know nothing of lineage."""

from __future__ import annotations

import functools

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from training.lineage.services import lineage_cards_refresh
from training.models import JobStatus, ModelEvaluation, Promotion, RewardModel, TrainingRun


def _after_commit(**ids) -> None:
    transaction.on_commit(functools.partial(lineage_cards_refresh, **ids), robust=True)


@receiver(post_save, sender=RewardModel, dispatch_uid="lineage_reward_model_saved")
def reward_model_saved(sender, instance: RewardModel, created: bool, **kwargs) -> None:
    if created:
        _after_commit(reward_model_ids=[instance.pk])


@receiver(post_save, sender=ModelEvaluation, dispatch_uid="lineage_evaluation_saved")
@receiver(post_save, sender=Promotion, dispatch_uid="lineage_promotion_saved")
def reward_model_record_saved(sender, instance, created: bool, **kwargs) -> None:
    if created:
        _after_commit(reward_model_ids=[instance.reward_model_id])


@receiver(post_save, sender=TrainingRun, dispatch_uid="lineage_run_saved")
def run_saved(sender, instance: TrainingRun, created: bool, update_fields=None, **kwargs) -> None:
    finishing = created or update_fields is None or "status" in update_fields
    if finishing and instance.status == JobStatus.SUCCEEDED:
        _after_commit(run_ids=[instance.pk])
