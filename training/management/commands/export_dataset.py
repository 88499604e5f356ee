"""`manage.py export_dataset`: make a dataset snapshot (or a plain export to a folder) with a progress bar.

manage.py export_dataset --project demo --name weekly --ties margin_zero --margin strength
manage.py export_dataset --project 3 --out /tmp/pairs --formats trl,meta
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.models import Project
from training.datasets.export import export_snapshot_files
from training.datasets.selectors import snapshot_judgments
from training.datasets.services import snapshot_build, snapshot_create, snapshot_spec_validate
from training.datasets.spec import SnapshotSpec
from training.datasets.writers import FORMATS
from training.models import JobStatus


class Command(BaseCommand):
    help = "Export judgments as a Bradley-Terry dataset: a DatasetSnapshot (default) or files in --out."

    def add_arguments(self, parser):
        parser.add_argument(
            "--project", action="append", required=True, help="Project id or name (repeatable)."
        )
        parser.add_argument("--name", default="", help="Snapshot name (versions count up per name).")
        parser.add_argument("--spec-json", default="{}", help="Extra spec fields as JSON (SnapshotSpec).")
        parser.add_argument("--combine", choices=["majority", "reliability_weighted", "per_vote"])
        parser.add_argument("--ties", choices=["drop", "margin_zero", "tie_aware"])
        parser.add_argument("--both-bad", choices=["drop", "margin_zero", "tie_aware"])
        parser.add_argument("--ranking-pairs", choices=["all_pairs", "best_vs_rest", "adjacent"])
        parser.add_argument("--margin", choices=["off", "strength"])
        parser.add_argument("--min-agreement", type=float)
        parser.add_argument("--date-from")
        parser.add_argument("--date-to")
        parser.add_argument("--split", help="train,validation,test shares, e.g. 0.8,0.1,0.1")
        parser.add_argument("--seed", type=int)
        parser.add_argument("--include-flagged", action="store_true", help="Keep quarantined annotators.")
        parser.add_argument("--include-gold", action="store_true", help="Keep gold tasks.")
        parser.add_argument("--out", help="Write files to this new folder instead of making a snapshot.")
        parser.add_argument("--formats", default=",".join(FORMATS), help="With --out: formats to write.")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--print-id",
            action="store_true",
            help="Print only the new snapshot's id on stdout (the summary goes to stderr): SNAPSHOT=$(...).",
        )

    def handle(self, *args, **opts):
        spec = self._spec(opts)
        total = snapshot_judgments(spec).count()
        bar = tqdm(total=total, unit="judgment", disable=opts["no_progress"], file=sys.stderr)
        try:
            if opts["out"]:
                self._export_to_folder(spec, Path(opts["out"]), opts["formats"], bar)
            else:
                self._snapshot(spec, opts["name"], bar, print_id=opts["print_id"])
        finally:
            bar.close()

    def _spec(self, opts) -> SnapshotSpec:
        try:
            data = json.loads(opts["spec_json"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--spec-json is not JSON: {exc}") from exc
        data["projects"] = [self._project_id(p) for p in opts["project"]]
        for option in ("combine", "ties", "both_bad", "ranking_pairs", "margin", "min_agreement", "seed"):
            if opts[option] is not None:
                data[option] = opts[option]
        for option in ("date_from", "date_to"):
            if opts[option]:
                data[option] = opts[option]
        if opts["split"]:
            try:
                train, validation, test = (float(x) for x in opts["split"].split(","))
            except ValueError as exc:
                raise CommandError("--split needs three numbers: train,validation,test") from exc
            data["split"] = {"train": train, "validation": validation, "test": test}
        if opts["include_flagged"]:
            data["exclude_flagged"] = False
        if opts["include_gold"]:
            data["exclude_gold"] = False
        try:
            return snapshot_spec_validate(user=None, spec=data)
        except ValidationError as exc:
            raise CommandError(f"Impossible spec: {exc.message_dict}") from exc

    @staticmethod
    def _project_id(value: str) -> int:
        project = Project.objects.filter(pk=int(value)).first() if value.isdigit() else None
        project = project or Project.objects.filter(name=value).first()
        if project is None:
            raise CommandError(f"Unknown project {value!r}")
        return project.pk

    def _snapshot(self, spec: SnapshotSpec, name: str, bar, *, print_id: bool = False) -> None:
        snapshot = snapshot_create(user=None, spec=spec, name=name, enqueue=False)
        snapshot = snapshot_build(snapshot_id=snapshot.pk, progress=bar.update)
        if snapshot.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Snapshot {snapshot} failed: {snapshot.error}")
        summary = (
            f"{snapshot} (id {snapshot.pk}): {snapshot.counts['rows']} rows, hash {snapshot.content_hash}\n"
            f"  {snapshot.artifact_dir}"
        )
        if print_id:
            self.stderr.write(summary)
            self.stdout.write(str(snapshot.pk))
        else:
            self.stdout.write(summary)

    def _export_to_folder(self, spec: SnapshotSpec, out: Path, formats: str, bar) -> None:
        if out.exists():
            raise CommandError(f"{out} already exists")
        wanted = tuple(f.strip() for f in formats.split(",") if f.strip())
        unknown = set(wanted) - set(FORMATS)
        if unknown:
            raise CommandError(f"Unknown formats {sorted(unknown)}; choose from {', '.join(FORMATS)}")
        tmp = out.with_name(f".{out.name}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            result = export_snapshot_files(spec, tmp, formats=wanted, progress=bar.update)
            (tmp / "card.json").write_text(
                json.dumps(
                    {"spec": spec.to_dict(), "counts": result.counts, "content_hash": result.content_hash},
                    indent=2,
                )
            )
            os.rename(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.stdout.write(f"{out}: {result.counts['rows']} rows, hash {result.content_hash}")
