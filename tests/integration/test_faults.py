"""Outages degrade gracefully: a database error becomes a retryable 503; a broker outage leaves the web UI
working with a "jobs are delayed" banner and never loses the job (publishing fails softly)."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import RequestFactory

from config import jobs
from config.middleware import DatabaseUnavailableMiddleware
from tests.factories import make_project, make_user

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1
pytestmark = pytest.mark.slow  # fault tests: run in CI like the rest, deselect with -m "not slow"


def test_database_error_is_a_retryable_503():
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    request = RequestFactory().post("/api/v1/tasks/1/submit")
    response = middleware.process_exception(request, OperationalError("server closed the connection"))
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert b'"retryable": true' in response.content


def _reset_pools(app) -> None:
    """Forget the app's connection and producer pools so the next publish takes the pools of the current
    ``broker_url`` (kombu keeps pools per connection globally: closing one would poison later tests)."""
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def dead_broker(settings):
    settings.CELERY_BROKER_URL = DEAD_REDIS
    from config.celery import app

    old = app.conf.broker_url
    app.conf.broker_url = DEAD_REDIS
    _reset_pools(app)
    jobs._broker_state.update(checked_at=0.0, ok=True)
    yield
    app.conf.broker_url = old
    _reset_pools(app)
    jobs._broker_state.update(checked_at=0.0, ok=True)


def test_pages_still_serve_and_say_jobs_are_delayed_when_broker_is_down(client, db, dead_broker):
    user = make_user("annotator")
    make_project(name="Outage project", members=[(user, "annotator")])
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    assert b"Outage project" in response.content
    assert b"Background jobs are delayed" in response.content


def test_publish_fails_softly_when_broker_is_down(dead_broker):
    from config.celery import ping

    assert jobs.publish(ping, "x") is False
    assert jobs.broker_available() is False


def test_no_banner_when_broker_is_up(client, db, settings, redis_url):
    settings.CELERY_BROKER_URL = redis_url
    from config.celery import app

    old = app.conf.broker_url
    app.conf.broker_url = redis_url
    _reset_pools(app)
    jobs._broker_state.update(checked_at=0.0, ok=True)
    try:
        client.force_login(make_user("annotator"))
        response = client.get("/")
        assert response.status_code == 200
        assert b"Background jobs are delayed" not in response.content
    finally:
        app.conf.broker_url = old
        _reset_pools(app)
