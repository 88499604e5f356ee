"""Writes for dataset snapshots: create a snapshot (validate, insert, enqueue the build) and build it
(stream the export into a temp dir, rename into place, record counts and hashes in one final update)."""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from annotation.auth import visible_projects
from annotation.models import Project
from training.datasets.export import EmptyExport, export_snapshot_files
from training.datasets.selectors import annotator_pseudonym, snapshot_judgments, snapshots_root
from training.datasets.spec import SnapshotSpec
from training.models import DatasetSnapshot, JobStatus

SNAPSHOT_TASK_NAME = "training.snapshot.build"
log = logging.getLogger(__name__)


@functools.cache
def code_version() -> str:
    """The git commit of the running code, or the package version when there is no git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH is intended
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()[:64]
    except (OSError, subprocess.SubprocessError):
        try:
            return f"preflab-{metadata.version('preflab')}"
        except metadata.PackageNotFoundError:
            return "unknown"


def snapshot_job_id(snapshot: DatasetSnapshot) -> str:
    """The Celery task id of a snapshot's build (deterministic, so clients can correlate logs)."""
    return f"snapshot-build-{snapshot.pk}"


def snapshot_spec_validate(*, user, spec: dict[str, Any] | SnapshotSpec) -> SnapshotSpec:
    """Validate a spec for ``user``: fields, projects that exist and are visible, and a non-empty result.

    Raises ``ValidationError`` {field: [reason]}.
    """
    if not isinstance(spec, SnapshotSpec):
        spec = SnapshotSpec.from_dict(spec)
    projects = visible_projects(user) if user is not None else Project.objects.all()
    found = set(projects.filter(pk__in=spec.projects).values_list("pk", flat=True))
    missing = [p for p in spec.projects if p not in found]
    if missing:
        raise ValidationError({"projects": [f"Unknown or not visible project ids: {missing}."]})
    if not snapshot_judgments(spec).exists():
        raise ValidationError({"spec": ["Empty result: no judgments match this spec."]})
    return spec


def snapshot_create(
    *,
    user,
    spec: dict[str, Any] | SnapshotSpec,
    name: str = "",
    enqueue: bool = True,
) -> DatasetSnapshot:
    """Validate ``spec`` and insert a queued snapshot (next version of ``name``); when ``enqueue``, the
    build task is sent after the transaction commits. An invalid spec raises and creates nothing."""
    spec = snapshot_spec_validate(user=user, spec=spec)
    name = (name or "snapshot").strip()[:200]
    for attempt in range(3):
        try:
            with transaction.atomic():
                latest = DatasetSnapshot.objects.filter(name=name).aggregate(v=Max("version"))["v"] or 0
                snapshot = DatasetSnapshot.objects.create(
                    name=name,
                    version=latest + 1,
                    spec=spec.to_dict(),
                    status=JobStatus.QUEUED,
                    code_version=code_version(),
                    created_by=user if user is not None and user.is_authenticated else None,
                )
                snapshot.projects.set(spec.projects)
                if enqueue:
                    transaction.on_commit(functools.partial(snapshot_publish, snapshot.pk))
            return snapshot
        except IntegrityError:  # two creates raced for the same version
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def snapshot_publish(snapshot_id: int) -> bool:
    """Publish the build; a broker outage leaves the row queued (logged) instead of failing the request,
    and ``snapshots_requeue_delayed`` (beat) publishes it again later. Never raises.

    Published by task name (the task module imports this one, not the reverse); ``TrainingConfig.ready``
    registers the task in every process, so eager mode runs it here."""
    try:
        current_app.signature(SNAPSHOT_TASK_NAME, args=[snapshot_id]).apply_async(
            task_id=f"snapshot-build-{snapshot_id}", retry=False
        )
    except Exception as exc:  # noqa: BLE001 - kombu raises several connection error types
        log.warning("snapshot %s stays queued: could not publish its build (%s)", snapshot_id, exc)
        return False
    return True


def snapshots_requeue_delayed(*, min_age_s: float = 600.0) -> int:
    """Publish again the builds of snapshots still queued after ``min_age_s`` (a broker outage); a
    snapshot no longer queued is left alone by its task. Returns how many were published."""
    snapshots = DatasetSnapshot.objects.filter(
        status=JobStatus.QUEUED, created_at__lte=timezone.now() - timedelta(seconds=min_age_s)
    ).values_list("pk", flat=True)
    return sum(snapshot_publish(pk) for pk in list(snapshots))


def snapshot_build(*, snapshot_id: int, progress: Callable[[int], None] | None = None) -> DatasetSnapshot:
    """Build a queued snapshot. Files are streamed into a temp dir under ``ARTIFACT_DIR/snapshots`` and
    renamed into place only when complete; the row becomes succeeded (with counts, hashes, lineage) or
    failed (with the reason, and no files) in one update. A snapshot not queued is returned unchanged."""
    with transaction.atomic():
        snapshot = DatasetSnapshot.objects.select_for_update().get(pk=snapshot_id)
        if snapshot.status != JobStatus.QUEUED:
            return snapshot
        snapshot.status = JobStatus.RUNNING
        snapshot.save(update_fields=["status"])

    root = snapshots_root()
    final_dir = root / f"{snapshot.pk}-{slugify(snapshot.name) or 'snapshot'}-v{snapshot.version}"
    tmp_dir = root / f".tmp-{snapshot.pk}-{uuid.uuid4().hex[:8]}"
    renamed = False
    try:
        spec = SnapshotSpec.from_dict(snapshot.spec)
        root.mkdir(parents=True, exist_ok=True)
        tmp_dir.mkdir()
        # Reliability weights (when the spec weights or drops by them) are estimated inside the export, from
        # the same database snapshot as the votes; the card records the ones used.
        result = export_snapshot_files(spec, tmp_dir, progress=progress)
        completed_at = timezone.now()
        card = _card(snapshot, spec, result, completed_at)
        (tmp_dir / "card.json").write_text(_json(card), encoding="utf-8")
        _make_read_only(tmp_dir)
        os.rename(tmp_dir, final_dir)
        renamed = True
        with transaction.atomic():
            DatasetSnapshot.objects.filter(pk=snapshot.pk).update(
                status=JobStatus.SUCCEEDED,
                error="",
                counts=result.counts,
                class_balance=result.class_balance,
                content_hash=result.content_hash,
                judgment_ids_hash=result.judgment_ids_hash,
                artifact_dir=str(final_dir),
                completed_at=completed_at,
            )
    except Exception as exc:
        _remove_tree(tmp_dir)
        if renamed:
            _remove_tree(final_dir)
        reason = (
            str(exc) if isinstance(exc, EmptyExport | ValidationError) else f"{type(exc).__name__}: {exc}"
        )
        DatasetSnapshot.objects.filter(pk=snapshot.pk).update(
            status=JobStatus.FAILED, error=reason[:2000], artifact_dir="", completed_at=timezone.now()
        )
    snapshot.refresh_from_db()
    return snapshot


def _card(snapshot: DatasetSnapshot, spec: SnapshotSpec, result, completed_at) -> dict[str, Any]:
    card: dict[str, Any] = {
        "id": snapshot.pk,
        "name": snapshot.name,
        "version": snapshot.version,
        "projects": spec.projects,
        "spec": spec.to_dict(),
        "counts": result.counts,
        "class_balance": result.class_balance,
        "content_hash": result.content_hash,
        "judgment_ids_hash": result.judgment_ids_hash,
        "code_version": snapshot.code_version,
        "created_at": snapshot.created_at.isoformat(),
        "completed_at": completed_at.isoformat(),
        "formats": {
            "trl": "trl/{split}.jsonl",
            "trl_conversational": "trl_conversational/{split}.jsonl",
            "meta": "meta/{split}.jsonl",
            "parquet": "parquet/{split}.parquet",
            "hf": "hf/",
            "votes": "votes.jsonl",
            "judgment_ids": "judgment_ids.txt",
        },
        "lineage": {
            "judgment_ids_file": "judgment_ids.txt",
            "judgment_ids_hash": result.judgment_ids_hash,
            "selection": "annotation judgments filtered by spec (training.datasets.selectors.snapshot_judgments)",
        },
        "notes": {
            "split": "by prompt content: no prompt text appears in two splits, even across projects",
            "neutral_rows": "kept ties / both-bad rows have margin 0 and label_type tie/both_bad in meta/",
            "repeats": "swapped repeat tasks are excluded (they duplicate an annotator's vote)",
            "adjudication": "an adjudicated task's answer replaces the votes on its pair",
            "annotator_ids": "votes.jsonl annotator = HMAC-SHA256(SECRET_KEY, user id), 16 hex chars",
        },
    }
    if result.reliability:
        reliability: dict[str, dict[str, float]] = {}
        for (project_id, annotator_id), weight in sorted(result.reliability.items()):
            reliability.setdefault(str(project_id), {})[annotator_pseudonym(annotator_id)] = weight
        card["reliability"] = reliability
        card["notes"]["reliability"] = (
            "Dawid-Skene reliability per project and pseudonymous annotator (EM over all the project's votes); "
            "reliability_weighted weighs votes by it, min_reliability drops votes below it"
        )
    return card


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _make_read_only(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(0o444)


def _remove_tree(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
