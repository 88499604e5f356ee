"""The docker/ files, checked by real tools instead of a home-made parser: the compose file against the
Compose Specification's JSON schema (``check-jsonschema``'s vendored ``compose-spec``; ``docker compose
config`` too where the client has compose), the Dockerfile with hadolint (parse errors and error-level
rules fail). And what the compose file names exists in the code: queues, commands, entry points, probes."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    assert found, f"{name} is a dev dependency (pip install -e '.[dev]')"
    return found


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_file_is_valid_against_the_compose_spec():
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(DOCKER / "compose.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_config_accepts_the_file_where_docker_compose_exists():
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode:
        pytest.skip("no docker compose on this machine (the schema test above still runs)")
    result = subprocess.run(
        [docker, "compose", "-f", str(DOCKER / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        env={"SECRET_KEY": "x", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", "--failure-threshold", "error", str(DOCKER / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_worker_queues_are_the_queues_tasks_are_routed_to():
    from django.conf import settings

    routed = {"default"} | {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    consumed = set()
    for service in _compose()["services"].values():
        command = service.get("command") or []
        if command[:4] == ["celery", "-A", "config", "worker"]:
            consumed |= set(command[command.index("-Q") + 1].split(","))
    assert consumed == routed


def test_commands_and_entry_points_exist():
    from django.core.management import get_commands

    for name, service in _compose()["services"].items():
        command = service.get("command") or []
        if command[:2] == ["python", "manage.py"]:
            assert command[2] in get_commands(), (name, command)
        if command[:1] in (["gunicorn"], ["uvicorn"]):
            module, _, attr = command[1].partition(":")
            # imported, as the server would (both entry points build their app lazily or cheaply)
            assert callable(getattr(importlib.import_module(module), attr, None)), (name, command[1])


def test_web_health_check_probes_a_real_route():
    from django.urls import resolve

    probe = " ".join(_compose()["services"]["web"]["healthcheck"]["test"])
    path = probe.split("http://127.0.0.1:8000", 1)[1].split("'", 1)[0]
    assert resolve(path)
