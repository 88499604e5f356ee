"""The Celery app. Tasks are thin wrappers over services; queues: `default` and `training`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("preflab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="preflab.ping")
def ping(value: str = "pong") -> str:
    """A no-op task: proves a worker consumes the broker (used by health checks and tests)."""
    return value


def _connect_observability() -> None:
    from config.observability import connect_celery_signals

    connect_celery_signals()


_connect_observability()
