"""Enqueueing background jobs without letting a broker outage break the web request.

Job rows (snapshots, runs) are the source of truth. ``enqueue`` publishes after the surrounding
transaction commits; if the broker is unreachable the row stays ``queued``, the failure is logged and
counted, and ``training.runs.requeue`` (beat; ``training.tasks.jobs_requeue_task``) publishes it again
once the broker is back.
The UI shows a "jobs are delayed" banner while the broker is down (``broker_available``, used by
``config.context_processors``).
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import transaction
from prometheus_client import Counter

log = logging.getLogger(__name__)
ENQUEUE_FAILURES = Counter("preflab_enqueue_failures_total", "Jobs that could not be published", ["task"])

_broker_state: dict[str, float | bool] = {"checked_at": 0.0, "ok": True}
BROKER_CHECK_TTL_S = 10.0


def task_by_name(name: str):
    """The Celery task registered as ``name``, as a signature ``publish``/``enqueue`` take: a service queues
    its own app's task by name, so ``services`` never imports the ``tasks`` module that imports it."""
    from config.celery import app

    return app.signature(name)


def publish(task, *args, **kwargs) -> bool:
    """Publish now. Returns False (and logs) instead of raising when the broker is unreachable."""
    try:
        task.apply_async(args=args, kwargs=kwargs, retry=False)
    except Exception as exc:  # noqa: BLE001 - kombu raises several connection error types
        ENQUEUE_FAILURES.labels(getattr(task, "name", "?")).inc()
        _broker_state.update(checked_at=time.monotonic(), ok=False)
        log.warning("job delayed: broker unreachable for %s (%s)", getattr(task, "name", task), exc)
        return False
    return True


def enqueue(task, *args, **kwargs) -> None:
    """Publish ``task`` once the current transaction commits (immediately outside one)."""
    transaction.on_commit(lambda: publish(task, *args, **kwargs))


def broker_available() -> bool:
    """Cached (10 s) answer to "can we reach the broker?"; always True for the embedded file broker."""
    if settings.CELERY_BROKER_URL.startswith("filesystem://") or settings.CELERY_TASK_ALWAYS_EAGER:
        return True
    now = time.monotonic()
    if now - float(_broker_state["checked_at"]) < BROKER_CHECK_TTL_S:
        return bool(_broker_state["ok"])
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=1)
        ok = True
    except Exception:  # noqa: BLE001
        ok = False
    _broker_state.update(checked_at=now, ok=ok)
    return ok
