"""Celery tasks of the training app: the generic run tasks (thin wrappers over ``training.jobs``) here, and
each subdomain's own (``datasets.tasks``: snapshot builds; ``rewardmodels.tasks``: retraining and task
scoring) imported below
so that Celery's autodiscovery of ``training.tasks`` finds them. Task names are fixed strings (queues and
beat schedules store them), independent of the module a task lives in.

``training.run.execute`` is routed to the ``training`` queue by ``CELERY_TASK_ROUTES``; the reaper is named
``training.runs.reap`` so it stays on the default queue (a busy training worker must not delay it). Workers
reap once when they start, and the app schedules for ``celery beat`` (a separate process, or ``-B`` in the
embedded ``manage.py serve``) the reaper every ``PREFLAB_REAP_EVERY_S`` (60) seconds and the automatic
retraining trigger (``training.runs.retrain``) every ``PREFLAB_RETRAIN_CHECK_EVERY_S`` (300) seconds, the
active reward models' live agreement (``training.runs.live_agreement``) every
``PREFLAB_LIVE_AGREEMENT_EVERY_S`` (900) seconds, and ``training.runs.requeue`` (jobs a broker outage left
queued) with the reaper.
"""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from config.celery import EXPIRES_FLOOR_S, beat_every  # noqa: F401  (EXPIRES_FLOOR_S: tests read it here)
from training import jobs
from training.datasets import tasks as _dataset_tasks  # noqa: F401  (Celery registers the snapshot build)
from training.datasets.services import snapshots_requeue_delayed
from training.rewardmodels import tasks as _reward_model_tasks  # noqa: F401  (retraining, task scoring)

REAP_EVERY_S = settings.PREFLAB_REAP_EVERY_S
RETRAIN_CHECK_EVERY_S = settings.PREFLAB_RETRAIN_CHECK_EVERY_S
LIVE_AGREEMENT_EVERY_S = settings.PREFLAB_LIVE_AGREEMENT_EVERY_S


@shared_task(name="training.run.execute", acks_late=True)
def run_execute_task(run_id: int) -> None:
    jobs.run_execute(run_id=run_id)


@shared_task(name="training.runs.reap")
def run_reap_task(max_silence_s: int = 120) -> int:
    return jobs.run_reap_stale(max_silence_s=max_silence_s)


@shared_task(name="training.runs.requeue")
def jobs_requeue_task(min_age_s: float = 30.0, snapshot_min_age_s: float = 600.0) -> dict[str, int]:
    """Publish again the runs and snapshots a broker outage left queued; returns how many of each."""
    return {
        "runs": jobs.runs_requeue_delayed(min_age_s=min_age_s),
        "snapshots": snapshots_requeue_delayed(min_age_s=snapshot_min_age_s),
    }


@worker_ready.connect
def _reap_on_worker_start(**_kwargs) -> None:
    jobs.run_reap_stale()


# The Celery app is a stage before us (config): add our periodic tasks to the beat schedule.
for _name, _every in (
    ("training.runs.reap", REAP_EVERY_S),
    ("training.runs.retrain", RETRAIN_CHECK_EVERY_S),
    ("training.runs.live_agreement", LIVE_AGREEMENT_EVERY_S),
    ("training.runs.requeue", REAP_EVERY_S),
):
    beat_every(_name, _every)
