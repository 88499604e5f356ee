"""Celery task of reward-model sweeps: one step (a trial, or the final evaluation), then the next step is
queued while trials remain (a thin wrapper over ``training.rewardmodels.sweeps.services``)."""

from __future__ import annotations

from celery import shared_task

from training.models import RewardModelSweep
from training.rewardmodels.sweeps.services import SWEEP_STEP_TASK, sweep_enqueue, sweep_step


@shared_task(name=SWEEP_STEP_TASK, acks_late=True)
def sweep_step_task(sweep_id: int) -> bool:
    """Run one step of the sweep; True if a trial ran (and the next step was queued)."""
    ran = sweep_step(sweep_id=sweep_id)
    if ran:
        sweep_enqueue(sweep=RewardModelSweep.objects.get(pk=sweep_id))
    return ran
