"""`manage.py serve` (`make run`): its worker embeds celery beat, so the periodic jobs (stale-run reaper,
automatic retraining) run in the embedded default too, on the file-system broker, with no extra process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from annotation.management.commands.serve import worker_command
from tests.processes import manage_shell

REPO = Path(__file__).resolve().parents[2]


def test_worker_command_embeds_beat_with_its_schedule_in_the_data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    command = worker_command()
    assert command[:6] == [sys.executable, "-m", "celery", "-A", "config", "worker"]
    assert command[command.index("-Q") + 1] == "default,training"
    assert "-B" in command
    assert command[command.index("--schedule") + 1] == str(tmp_path / "celerybeat-schedule")
    without = worker_command(beat=False)
    assert "-B" not in without and "--schedule" not in without


def _manage_shell(env: dict[str, str], code: str) -> str:
    return manage_shell(env, code).strip().splitlines()[-1]


@pytest.mark.slow
def test_embedded_worker_beat_reaps_a_crashed_run_on_the_filesystem_broker(settings, tmp_path):
    """The worker `serve` starts, on SQLite and the file-system broker: its embedded beat sends the reaper,
    which fails a run left `running` with a silent heartbeat after the worker had started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "DJANGO_"))}
    env.update(PREFLAB_DATA_DIR=str(tmp_path), PREFLAB_REAP_EVERY_S="3", PREFLAB_RETRAIN_CHECK_EVERY_S="5")
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr
    settings.DATA_DIR = tmp_path
    worker = subprocess.Popen(
        worker_command(),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(worker.stdout.readline, "")), daemon=True)
    reader.start()

    def wait_for(predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert worker.poll() is None, f"worker exited:\n{''.join(lines)[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} in {timeout}s:\n{''.join(lines)[-3000:]}"
            time.sleep(0.5)

    try:
        wait_for(lambda: any(" ready." in line for line in lines), 120, "worker ready")
        run_id = _manage_shell(
            env,
            "import datetime; from django.utils import timezone; from training.models import TrainingRun; "
            "print(TrainingRun.objects.create(base_model='crashed', status='running', "
            "heartbeat_at=timezone.now() - datetime.timedelta(hours=1)).pk)",
        )
        # the task's result is how many runs it failed: 1 is our run (the start-up reap ran before it existed)
        wait_for(
            lambda: any("training.runs.reap[" in line and line.rstrip().endswith(": 1") for line in lines),
            90,
            "beat-sent reaper run that reaped the run",
        )
        status = _manage_shell(
            env,
            f"from training.models import TrainingRun; r = TrainingRun.objects.get(pk={run_id}); "
            "print(r.status, '|', r.status_reason)",
        )
        assert status.startswith("failed"), status
        log = "".join(lines)
        assert "Sending due task training.runs.reap" in log
        wait_for(lambda: any("training.runs.retrain" in line for line in lines), 30, "retrain check")
        assert list(tmp_path.glob("celerybeat-schedule*"))
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
