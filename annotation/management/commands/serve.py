"""`manage.py serve`: the embedded one-machine service, web server and a real Celery worker process."""

from __future__ import annotations

import signal
import subprocess
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server and a Celery worker (queues default + training) together."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--no-worker", action="store_true", help="Web only (workers run elsewhere).")

    def handle(self, *args, host: str, port: str, no_worker: bool, **options):
        # SIGTERM (e.g. from a process manager) ends the web server through the same cleanup as Ctrl-C,
        # so the worker never outlives it.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        worker = None
        if not no_worker:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    "default,training",
                    "-c",
                    "1",
                    "-l",
                    "info",
                    "--without-gossip",
                    "--without-mingle",
                ],
            )
            self.stdout.write(f"Celery worker started (pid {worker.pid}).")
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
