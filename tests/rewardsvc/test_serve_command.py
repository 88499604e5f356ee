"""`manage.py serve_rewards` (the command the README and docs give) starts a reward server process that
serves the project's pinned RM version from the shared database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.db import connection

from annotation.models import Role
from tests.factories import make_project, make_token, make_user
from tests.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def test_serve_rewards_command_serves_the_pinned_version(
    require_postgres, make_rm, tiny_reward_model_dir, tmp_path
):
    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    make_rm(project, 1, tiny_reward_model_dir, active=True)
    token = make_token(engineer, ["score"])
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    env = {**os.environ, "DATABASE_URL": _database_url(), "PREFLAB_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve_rewards", "--project", str(project.pk), "--rm-version", "1",
         "--port", str(port), "--no-access-log"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(
                "serve_rewards did not become healthy: " + (tmp_path / "serve.log").read_text()[-3000:]
            )
        body = {
            "items": [{"prompt": "Hi", "response": "Hello there"}, {"prompt": "Hi", "response": "Go away"}]
        }
        answer = httpx.post(url + "/v1/reward/score", json=body, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == 1 and len(answer.json()["rewards"]) == 2
        assert httpx.post(url + "/v1/reward/score", json=body).status_code == 401
        models = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {token}"}).json()
        assert "1" in str(models)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_serve_rewards_needs_a_project_or_a_model_dir():
    done = subprocess.run(
        [sys.executable, "manage.py", "serve_rewards"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "Give --project (or --model-dir)." in done.stderr
