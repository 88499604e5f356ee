"""Celery tasks for dataset snapshots (thin wrappers over training.datasets.services)."""

from __future__ import annotations

from celery import shared_task

from training.datasets.services import SNAPSHOT_TASK_NAME, snapshot_build


@shared_task(name=SNAPSHOT_TASK_NAME)
def snapshot_build_task(snapshot_id: int) -> str:
    """Build one queued snapshot; the outcome (succeeded / failed + reason) is on the snapshot row."""
    return snapshot_build(snapshot_id=snapshot_id).status
