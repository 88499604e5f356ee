"""Run the reward server (uvicorn) for a project's active reward model, a pinned version or a model dir."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Serve reward model scores over HTTP (native, OpenRLHF and vLLM-compatible routes)."

    def add_arguments(self, parser):
        parser.add_argument("--project", type=int, help="Project id: serve its active RM, follow promotions.")
        parser.add_argument(
            "--rm-version",
            dest="rm_version",
            type=int,
            help="Pin this RM version (default: follow promotions).",
        )
        parser.add_argument("--model-dir", help="Serve a bare save_pretrained dir (no registry).")
        parser.add_argument("--host", default=os.environ.get("PREFLAB_RM_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PREFLAB_RM_PORT", "8100")))
        parser.add_argument("--workers", type=int, default=1, help="Processes (each loads the model once).")
        parser.add_argument("--threads", type=int, help="torch threads per process (PREFLAB_RM_THREADS).")
        parser.add_argument("--batch-window-ms", type=float, help="PREFLAB_RM_BATCH_WINDOW_MS")
        parser.add_argument("--no-access-log", action="store_true")

    def handle(self, *args, **opts):
        import uvicorn

        env = {
            "PREFLAB_RM_PROJECT": opts.get("project"),
            "PREFLAB_RM_VERSION": opts.get("rm_version"),
            "PREFLAB_RM_MODEL_DIR": opts.get("model_dir"),
            "PREFLAB_RM_THREADS": opts.get("threads"),
            "PREFLAB_RM_BATCH_WINDOW_MS": opts.get("batch_window_ms"),
        }
        for key, value in env.items():
            if value is not None:
                os.environ[key] = str(value)
        if not os.environ.get("PREFLAB_RM_PROJECT") and not os.environ.get("PREFLAB_RM_MODEL_DIR"):
            raise CommandError("Give --project (or --model-dir).")
        uvicorn.run(
            "rewardsvc.server:app",
            host=opts["host"],
            port=opts["port"],
            workers=opts["workers"],
            access_log=not opts["no_access_log"],
            timeout_graceful_shutdown=30,
        )
