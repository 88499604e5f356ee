"""Celery discovers ``training.tasks``; the tasks live in one module per subject."""

from training import policy_tasks, run_tasks, scoring_tasks, snapshot_tasks  # noqa: F401
