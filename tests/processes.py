"""Running Django code in another process, for tests of what processes share (broker, cache, limits)."""

from __future__ import annotations

import subprocess
import sys
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
