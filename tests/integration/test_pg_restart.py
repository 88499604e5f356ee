"""Fault test: PostgreSQL restarts while annotators submit. Clients see only retryable errors (503 or a
dropped connection, never a 500), and after retrying with the same idempotency keys every judgment is in
the database exactly once."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from django.db import connection

from annotation.models import Judgment
from tests.factories import make_project, make_task, make_token, make_user

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

N_ANNOTATORS = 4
N_TASKS = 40


def _restart_postgres() -> None:
    versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").exists() else []
    if not versions or not shutil.which("pg_ctlcluster"):
        pytest.skip("cannot restart the local PostgreSQL cluster here")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _with_retries(send, errors: list[str], deadline: float):
    while time.monotonic() < deadline:
        try:
            response = send()
        except httpx.TransportError as exc:
            errors.append(f"transport:{type(exc).__name__}")
            time.sleep(0.3)
            continue
        if response.status_code == 503:
            errors.append("503")
            time.sleep(float(response.headers.get("Retry-After", "1")) / 4)
            continue
        return response
    raise AssertionError("gave up retrying")


def test_restart_while_submitting_loses_and_doubles_nothing(live_server, require_postgres):
    project = make_project(overlap_k=1, undo_grace_seconds=0)
    for i in range(N_TASKS):
        make_task(project, a=f"left {i}", b=f"right {i}")
    keys = []
    for _ in range(N_ANNOTATORS):
        user = make_user("annotator")
        project.memberships.create(user=user, role="annotator")
        keys.append(make_token(user, ["annotate"]))

    acked: set[int] = set()
    errors: list[str] = []
    server_errors: list[str] = []
    submitted = threading.Semaphore(0)
    lock = threading.Lock()
    deadline = time.monotonic() + 240

    def annotate(key: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=live_server.url, timeout=10) as client:
            while True:
                r = _with_retries(
                    lambda: client.post(f"/api/v1/projects/{project.pk}/tasks/next", headers=headers),
                    errors,
                    deadline,
                )
                if r.status_code >= 500:
                    server_errors.append(f"next {r.status_code}")
                    continue
                task = r.json()["task"]
                if task is None:
                    return
                idem = uuid.uuid4().hex
                r = _with_retries(
                    lambda task=task, idem=idem: client.post(
                        f"/api/v1/tasks/{task['id']}/submit",
                        json={"choice": "A", "strength": 2},
                        headers={**headers, "Idempotency-Key": idem},
                    ),
                    errors,
                    deadline,
                )
                if r.status_code >= 500:
                    server_errors.append(f"submit {r.status_code}")
                    continue
                assert r.status_code in (200, 201), r.text
                with lock:
                    acked.add(r.json()["judgment"])
                submitted.release()
                time.sleep(0.05)

    threads = [threading.Thread(target=annotate, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for _ in range(8):  # restart once some judgments are in
        assert submitted.acquire(timeout=120)
    _restart_postgres()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)

    connection.close()  # our own connection died with the restart
    assert not server_errors, server_errors
    ids = set(Judgment.objects.filter(task__project=project).values_list("id", flat=True))
    assert ids == acked, f"lost={acked - ids} unacknowledged={ids - acked}"
    assert len(ids) == N_TASKS  # k=1: every task judged exactly once
    assert set(errors) <= {
        "503",
        "transport:ReadError",
        "transport:RemoteProtocolError",
        "transport:ConnectError",
        "transport:ReadTimeout",
    }
