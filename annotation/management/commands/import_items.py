"""`manage.py import_items PROJECT FILE`: import a file or Hugging Face dataset into a project.

PROJECT is a project id or name. FILE is a .jsonl/.jsonl.gz/.json/.csv/.parquet file, a directory saved
with ``datasets.save_to_disk``, or a Hugging Face hub dataset id ``owner/name``. Any local path may be named
here (the operator's own machine), never a ``datasets`` builder name such as ``json``.
Progress goes to stderr; a bad file stops with its line/row number and reason, and nothing is written.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.importing import FORMATS, SHAPES, ImportFileError
from annotation.models import PairingStrategy, Project
from annotation.services.imports import items_import


class Command(BaseCommand):
    help = "Import prompts and candidate responses (JSONL, CSV, Parquet or a Hugging Face dataset) into a project."

    def add_arguments(self, parser):
        parser.add_argument("project", help="Project id or name.")
        parser.add_argument(
            "source", help="File path, saved dataset directory, or a Hugging Face hub dataset id owner/name."
        )
        parser.add_argument("--format", choices=FORMATS, help="Override detection by file extension.")
        parser.add_argument(
            "--shape", choices=SHAPES, help="Override detection from the first record's keys."
        )
        parser.add_argument(
            "--pairing", choices=PairingStrategy.values, help="Default: the project's strategy."
        )
        parser.add_argument("--pairs-per-prompt", type=int, help="k for random_k (default: the project's).")
        parser.add_argument(
            "--prior-judgments",
            action="store_true",
            help="Store each chosen/rejected preference as a prior judgment by the 'preflab-import' user.",
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed for pairing and A/B order.")
        parser.add_argument("--split", help="Dataset split (HF datasets with several splits).")
        parser.add_argument("--limit", type=int, help="Import at most this many records.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, project: str, source: str, **opts):
        found = Project.objects.filter(pk=int(project)) if project.isdigit() else Project.objects.none()
        target = found.first() or Project.objects.filter(name=project).first()
        if target is None:
            raise CommandError(f"No project with id or name {project!r}.")
        bars: dict[str, tqdm] = {}

        def progress(stage: str, n: int) -> None:
            if stage not in bars:
                label = "reading records" if stage == "read" else "writing rows"
                bars[stage] = tqdm(desc=label, unit=" rows", file=self.stderr._out, leave=False)
            bars[stage].update(n)

        try:
            report = items_import(
                project=target,
                source=source,
                format=opts["format"],
                shape=opts["shape"],
                pairing=opts["pairing"],
                pairs_per_prompt=opts["pairs_per_prompt"],
                prior_judgments=opts["prior_judgments"],
                seed=opts["seed"],
                split=opts["split"],
                limit=opts["limit"],
                progress=None if opts["verbosity"] == 0 else progress,
            )
        except ImportFileError as exc:
            raise CommandError(f"Import failed, nothing was written: {exc.message}") from exc
        finally:
            for bar in bars.values():
                bar.close()
        if opts["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.stdout.write(self.style.SUCCESS(f"Imported into '{target.name}': {report.summary()}"))
