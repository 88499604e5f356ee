"""The demo's reward server: PrefLab's ASGI reward app (``rewardsvc.server:app``) under uvicorn in a child
process on a free loopback port, serving a project's active reward model, on the database this process uses."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection


class ServerStartError(RuntimeError):
    """The reward server process exited or did not become ready in time."""


def database_url() -> str:
    """A ``DATABASE_URL`` naming the database this process is connected to (so a child process sees the same
    rows; under pytest that is the test database, not the one in the environment)."""
    db = connection.settings_dict
    engine, name = db["ENGINE"], str(db["NAME"])
    if engine.endswith("sqlite3"):
        if name == ":memory:" or "mode=memory" in name:
            raise ServerStartError("a reward server process cannot share an in-memory SQLite database")
        return f"sqlite:///{name}"
    if "postgresql" in engine:
        auth = quote(db.get("USER") or "", safe="")
        if db.get("PASSWORD"):
            auth += ":" + quote(db["PASSWORD"], safe="")
        host = db.get("HOST") or "127.0.0.1"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{auth + '@' if auth else ''}{host}{port}/{quote(name, safe='')}"
    raise ServerStartError(f"no DATABASE_URL form for the database engine {engine}")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def reward_server_command(host: str, port: int) -> list[str]:
    """uvicorn with the reward app (what ``manage.py serve_rewards`` runs), one worker, no access log."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "rewardsvc.server:app",
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "10",
    ]


@contextlib.contextmanager
def reward_server(
    *, project_id: int, log_path: Path, timeout_s: float = 240.0, threads: int = 1
) -> Iterator[dict[str, Any]]:
    """Start the server for ``project_id``'s active reward model; yield {url, pid, model_version, log} once
    ``/health`` reports a loaded model; terminate the process on exit (kill if it does not stop)."""
    import httpx

    host, port = "127.0.0.1", free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),
        "PREFLAB_ARTIFACT_DIR": str(settings.ARTIFACT_DIR),
        "PREFLAB_RM_PROJECT": str(project_id),
        "PREFLAB_RM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
    }
    for key in ("PREFLAB_RM_VERSION", "PREFLAB_RM_MODEL_DIR"):
        env.pop(key, None)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://{host}:{port}"
    with log_path.open("w", encoding="utf-8") as log_file:
        proc = subprocess.Popen(  # noqa: S603 - our own server module with fixed arguments
            reward_server_command(host, port),
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=settings.BASE_DIR,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout_s
            health: dict[str, Any] = {}
            while health.get("status") != "ok":
                if proc.poll() is not None:
                    raise ServerStartError(f"the reward server exited with {proc.returncode}; see {log_path}")
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"the reward server was not ready in {timeout_s:.0f}s; see {log_path}"
                    )
                time.sleep(0.5)
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    health = httpx.get(url + "/health", timeout=2.0).json()
            yield {
                "url": url,
                "pid": proc.pid,
                "model_version": health.get("model_version"),
                "log": str(log_path),
            }
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
