"""A reward server that cannot start says why: uvicorn's default lifespan mode swallows the error of the first
(lifespan) call, and Django's registry then refuses a second set-up with "populate() isn't reentrant", which
hid the real cause (a syntax error in a module, a wrong settings module) on every request."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from tests.processes import REPO, free_port

SERVER = [sys.executable, "-m", "uvicorn", "rewardsvc.server:app", "--host", "127.0.0.1"]


def test_a_server_that_fails_to_start_names_the_cause_in_its_log_and_on_every_call(tmp_path):
    # Valid settings plus an app whose module does not compile: Django's app registry is left half set up.
    (tmp_path / "preflab_broken_settings.py").write_text(
        "from config.settings import *  # noqa\nINSTALLED_APPS = [*INSTALLED_APPS, 'preflab_broken_app']\n"
    )
    (tmp_path / "preflab_broken_app.py").write_text("x = = 1  # the syntax error at fault\n")
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "preflab_broken_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
    }
    with log.open("w") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own server module
            [*SERVER, "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        statuses = []
        deadline = time.monotonic() + 120
        while len(statuses) < 2 and time.monotonic() < deadline:
            try:
                statuses.append(httpx.get(f"http://127.0.0.1:{port}/health", timeout=30).status_code)
            except httpx.TransportError:
                time.sleep(0.2)
        assert statuses == [500, 500]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log.read_text()
    assert "the reward server failed to start" in text
    assert "SyntaxError" in text and "preflab_broken_app" in text
    # the second call names the first cause too
    assert text.count("the reward server failed to start") >= 2
