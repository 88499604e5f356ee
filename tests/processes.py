"""Running code beside the test: Django code in another process (for what processes share: broker, cache,
limits) and an ASGI app under uvicorn in a thread (the reward server)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def manage_shell(env: dict[str, str], code: str, timeout: float = 120) -> str:
    """Run ``code`` with ``manage.py shell`` in a fresh process built from ``env``; its stdout. Fails the
    test with the process's stderr if it exits non-zero."""
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def uvicorn_in_thread(app, *, start_timeout_s: float = 60) -> Iterator[str]:
    """Serve an ASGI app under uvicorn on a free loopback port in a daemon thread; yields its base URL and
    stops the server when the block ends."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server failed to start")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start in {start_timeout_s:.0f}s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
