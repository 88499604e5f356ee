"""Settings, health, metrics, logs and the embedded / production Celery brokers, exercised for real."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "DJANGO_"))}
    env.update(extra)
    return env


def test_health_ready_and_metrics(client, db):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    metrics = client.get("/metrics").content.decode()
    assert "preflab_http_requests_total" in metrics
    assert 'route="/ready"' in metrics


def test_json_log_lines_are_json_with_extras():
    from config.observability import JsonFormatter

    record = logging.makeLogRecord(
        {"name": "preflab.test", "levelname": "INFO", "msg": "imported %d rows", "args": (3,), "project": 7}
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "imported 3 rows"
    assert line["project"] == 7
    assert line["level"] == "INFO"


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = _env(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="preflab.example.org",
        PREFLAB_DATA_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key(tmp_path):
    env = _env(DEBUG="0", PREFLAB_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def _round_trip_through_worker(env: dict[str, str]) -> str:
    """Start a real worker process, send preflab.ping from another process, return the result."""
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "default",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "warning",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        sender = subprocess.run(
            [
                sys.executable,
                "-c",
                "import django; django.setup(); from config.celery import ping; "
                "print(ping.delay('hello-from-test').get(timeout=90))",
            ],
            cwd=REPO,
            env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
            capture_output=True,
            text=True,
            timeout=150,
        )
        assert sender.returncode == 0, sender.stderr[-2000:]
        return sender.stdout.strip().splitlines()[-1]
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


@pytest.mark.slow
def test_embedded_default_needs_no_server(tmp_path):
    """No DATABASE_URL, no CELERY_BROKER_URL: SQLite + file-system broker + a real worker process."""
    env = _env(PREFLAB_DATA_DIR=str(tmp_path), CELERY_RESULT_BACKEND=f"file://{tmp_path}/results")
    (tmp_path / "results").mkdir()
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert (tmp_path / "preflab.sqlite3").exists()
    start = time.monotonic()
    assert _round_trip_through_worker(env) == "hello-from-test"
    assert time.monotonic() - start < 150


@pytest.mark.slow
def test_redis_broker_round_trip(tmp_path, redis_url):
    env = _env(PREFLAB_DATA_DIR=str(tmp_path), CELERY_BROKER_URL=redis_url, CELERY_RESULT_BACKEND=redis_url)
    assert _round_trip_through_worker(env) == "hello-from-test"


def test_login_is_rate_limited(client, db):
    from django.core.cache import cache

    cache.clear()
    for _ in range(10):
        response = client.post("/accounts/login/", {"username": "nobody", "password": "wrong"})
        assert response.status_code == 200
    response = client.post("/accounts/login/", {"username": "nobody", "password": "wrong"})
    assert response.status_code == 429
    assert b"Too many failed attempts" in response.content
    cache.clear()
