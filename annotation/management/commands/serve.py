"""`manage.py serve`: the embedded one-machine service, web server and a real Celery worker process with an
embedded beat, so the periodic jobs (stale-run reaper, automatic retraining) run without a separate process."""

from __future__ import annotations

import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


def worker_command(*, beat: bool = True) -> list[str]:
    """The Celery worker's command line: queues default + training, one process, and with ``beat`` an
    embedded beat (``-B``) whose schedule file lives in the data directory (``PREFLAB_DATA_DIR``)."""
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,training", "-c", "1"]
    command += ["-l", "info", "--without-gossip", "--without-mingle"]
    if beat:
        command += ["-B", "--schedule", str(settings.DATA_DIR / "celerybeat-schedule")]
    return command


class Command(BaseCommand):
    help = "Run the web server and a Celery worker with embedded beat (queues default + training) together."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--no-worker", action="store_true", help="Web only (workers run elsewhere).")
        parser.add_argument(
            "--no-beat", action="store_true", help="No embedded beat (a `celery beat` runs elsewhere)."
        )

    def handle(self, *args, host: str, port: str, no_worker: bool, no_beat: bool, **options):
        # SIGTERM (e.g. from a process manager) ends the web server through the same cleanup as Ctrl-C,
        # so the worker never outlives it.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        worker = None
        if not no_worker:
            worker = subprocess.Popen(worker_command(beat=not no_beat))
            beat = "" if no_beat else " with embedded beat"
            self.stdout.write(f"Celery worker{beat} started (pid {worker.pid}).")
        self.stdout.write(
            self.style.SUCCESS(f"PrefLab on http://{host}:{port}/  (Ctrl-C stops web and worker)")
        )
        try:
            call_command("runserver", f"{host}:{port}", use_reloader=False)
        finally:
            if worker is not None and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
