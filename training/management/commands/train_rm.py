"""Train a reward model on a ready snapshot: queue it for a worker (default), run it here (``--sync``), or
start it on several GPUs with ``accelerate launch`` (``--accelerate N``; ``--print-command`` shows it)."""

from __future__ import annotations

import json
import subprocess

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from training import jobs
from training.models import DatasetSnapshot, JobStatus, TrainingRun
from training.rewardmodels.launch import build_accelerate_command
from training.rewardmodels.services import reward_run_create


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--snapshot", type=int, required=True, help="id of a ready dataset snapshot")
        parser.add_argument("--base-model", default="minilm", help="HF id, directory, or 'minilm' (packaged)")
        parser.add_argument("--config", default="{}", help="JSON of RewardRunConfig fields")
        parser.add_argument("--seed", type=int, default=42)
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--sync", action="store_true", help="run in this process instead of a worker")
        mode.add_argument("--accelerate", type=int, metavar="N", help="launch on N GPU processes")
        parser.add_argument("--print-command", action="store_true", help="with --accelerate: only print it")

    def handle(self, *args, **opts):
        snapshot = DatasetSnapshot.objects.filter(pk=opts["snapshot"]).first()
        if snapshot is None:
            raise CommandError(f"no snapshot {opts['snapshot']}")
        try:
            config = json.loads(opts["config"])
            run = reward_run_create(
                snapshot=snapshot,
                base_model=opts["base_model"],
                config=config,
                seed=opts["seed"],
                enqueue=not (opts["sync"] or opts["accelerate"]),
            )
        except (ValidationError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"run {run.pk} created ({run.output_dir})")
        if opts["accelerate"]:
            cmd = build_accelerate_command(run_id=run.pk, num_processes=opts["accelerate"])
            self.stdout.write(" ".join(cmd))
            if not opts["print_command"]:
                subprocess.run(cmd, check=False)  # noqa: S603 - argv built by us
        elif opts["sync"]:
            jobs.run_execute(run_id=run.pk)
        else:
            self.stdout.write(
                "queued on the 'training' queue; start a worker: celery -A config worker -Q training"
            )
            return
        run = TrainingRun.objects.get(pk=run.pk)
        self.stdout.write(f"run {run.pk}: {run.status} {run.status_reason}".strip())
        if run.summary.get("eval"):
            self.stdout.write(json.dumps(run.summary["eval"], indent=2))
        if opts["sync"] and run.status != JobStatus.SUCCEEDED:
            raise CommandError(f"run {run.pk} {run.status}: {run.status_reason}\n{run.log_tail[-2000:]}")
        if run.summary.get("reward_model_id"):
            self.stdout.write(
                f"reward model {run.summary['reward_model_id']} registered as version "
                f"{run.summary['reward_model_version']}; promote it: manage.py promote_rm "
                f"{run.summary['reward_model_id']}"
            )
