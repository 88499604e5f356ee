"""Imports started from the import page: keep the uploaded file, preview it, then run a dry run and the
import as background jobs whose progress the page polls. The parsing and writing are
``annotation.services.imports`` (the same code as the API and the CLI)."""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from annotation.importing import ImportFileError
from annotation.models import ImportBatch, ImportJob, ImportJobStatus, PairingStrategy, Project
from annotation.services.imports import items_import, items_import_preview
from config.jobs import enqueue, task_by_name

log = logging.getLogger(__name__)
IMPORTS_SUBDIR = "imports"
# The job row is updated at most this often while a file is read (the page polls it).
PROGRESS_EVERY_S = 0.5


def _upload_dir() -> Path:
    return Path(settings.ARTIFACT_DIR) / IMPORTS_SUBDIR / uuid.uuid4().hex


def import_job_create(*, project: Project, upload, created_by, options: dict) -> ImportJob:
    """Keep ``upload`` (a Django ``UploadedFile``) under the artifact directory, read its first rows and
    record the job with its preview. The file name is only a label and picks the reader by its extension;
    it never becomes a path of the user's choosing (a fresh directory holds the file under its base name).
    A file too large is refused before it is stored."""
    limit = settings.PREFLAB_MAX_IMPORT_BYTES
    if upload.size > limit:
        raise ValidationError({"file": [f"The file is {upload.size} bytes; the limit is {limit} bytes."]})
    if options.get("pairing") and options["pairing"] not in PairingStrategy.values:
        raise ValidationError({"pairing": ["Unknown pairing strategy."]})
    name = Path(upload.name or "").name or "upload"
    folder = _upload_dir()
    folder.mkdir(parents=True)
    path = folder / name
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    preview = items_import_preview(source=str(path), shape=options.get("shape") or None, max_bytes=limit)
    try:
        with transaction.atomic():
            return ImportJob.objects.create(
                project=project,
                created_by=created_by,
                file_name=name[:255],
                file_path=str(path),
                file_size=upload.size,
                options=options,
                preview=preview,
            )
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise


@transaction.atomic
def import_job_start(*, job: ImportJob, dry_run: bool) -> ImportJob:
    """Queue the dry run or the import of ``job``'s file. The import needs a dry run that passed; neither
    starts while one is queued or running, nor after the import succeeded."""
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status in (ImportJobStatus.QUEUED, ImportJobStatus.RUNNING):
        raise ValidationError({"job": ["This import is already running."]})
    if job.report:
        raise ValidationError({"job": ["This file has been imported already."]})
    if not dry_run and not job.dry_run_report:
        raise ValidationError({"job": ["Run the dry run first: the import starts once it has passed."]})
    job.dry_run = dry_run
    job.status = ImportJobStatus.QUEUED
    job.stage, job.error, job.records_read, job.rows_written = "", "", 0, 0
    job.save(
        update_fields=["dry_run", "status", "stage", "error", "records_read", "rows_written", "updated_at"]
    )
    enqueue(task_by_name("annotation.imports.run"), job.pk)
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    """Run a queued job (the Celery task's body): read and check the whole file, then write it in one
    transaction, or roll it back for a dry run. A bad file fails the job with the first error and its line;
    nothing is written. Progress goes to the job row as it is read (the write is one transaction, so its
    rows appear at the end)."""
    job = ImportJob.objects.select_related("project").get(pk=job_id)
    if job.status != ImportJobStatus.QUEUED:
        return job
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJobStatus.RUNNING, stage="read")
    counts = {"read": 0, "write": 0}
    last = [0.0]

    def progress(stage: str, n: int) -> None:
        counts[stage] = counts.get(stage, 0) + n
        now = time.monotonic()
        if stage == "read" and now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            ImportJob.objects.filter(pk=job.pk).update(records_read=counts["read"], stage="read")

    options = job.options or {}
    try:
        report = items_import(
            project=job.project,
            source=job.file_path,
            shape=options.get("shape") or None,
            pairing=options.get("pairing") or None,
            prior_judgments=bool(options.get("prior_judgments")),
            created_by=job.created_by,
            progress=progress,
            max_bytes=settings.PREFLAB_MAX_IMPORT_BYTES,
            dry_run=job.dry_run,
        )
    except ImportFileError as exc:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJobStatus.FAILED, error=exc.message, records_read=counts["read"], stage=""
        )
        return ImportJob.objects.get(pk=job.pk)
    except Exception as exc:
        log.exception("import job %s failed", job.pk)
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJobStatus.FAILED, error=f"internal error: {exc.__class__.__name__}", stage=""
        )
        raise
    done = {
        "status": ImportJobStatus.SUCCEEDED,
        "stage": "",
        "records_read": counts["read"],
        "rows_written": 0 if job.dry_run else counts["write"],
    }
    report.source = job.file_name
    if job.dry_run:
        done["dry_run_report"] = report.as_dict()
    else:
        done["report"] = report.as_dict()
        # The batch is labelled with the file's name, not the server path it was read from.
        ImportBatch.objects.filter(pk=report.batch_id).update(source=job.file_name)
        done["batch"] = ImportBatch.objects.filter(pk=report.batch_id).first()
    for name, value in done.items():
        setattr(job, name, value)
    job.save(update_fields=[*done, "updated_at"])
    if not job.dry_run:
        shutil.rmtree(Path(job.file_path).parent, ignore_errors=True)
    return job
