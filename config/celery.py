"""The Celery app. Tasks are thin wrappers over services; queues: `default` and `training`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("preflab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# A periodic message expires after its period (with the embedded one-process worker a long training run
# delays these; an expired message is dropped instead of piling up behind it), but never before this many
# seconds: with a short period (tests, an impatient operator) a worker merely a little behind would drop
# every one of them.
EXPIRES_FLOOR_S = 30.0


def beat_every(task_name: str, seconds: float) -> None:
    """Put the task named ``task_name`` on the beat schedule every ``seconds`` (the one way apps do it)."""
    app.conf.beat_schedule.setdefault(
        task_name,
        {"task": task_name, "schedule": seconds, "options": {"expires": max(seconds, EXPIRES_FLOOR_S)}},
    )


@app.task(name="preflab.ping")
def ping(value: str = "pong") -> str:
    """A no-op task: proves a worker consumes the broker (used by health checks and tests)."""
    return value


def _connect_observability() -> None:
    from config.observability import connect_celery_signals

    connect_celery_signals()


_connect_observability()
