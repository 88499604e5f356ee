"""Imports into a project: batches (their report) and background import jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models.projects import Project


class ImportBatch(models.Model):
    """One import of a file or dataset into a project, with its counts (the report)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    source = models.CharField(max_length=500)
    format = models.CharField(max_length=16)
    shape = models.CharField(max_length=16, blank=True)
    counts = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)


class ImportJobStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded (preview ready)"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """A file uploaded from the import page: its preview, then a dry run and the import as background jobs.

    The file is kept under ``ARTIFACT_DIR/imports/`` (never a path the user chose). ``dry_run`` is the mode
    of the latest run; ``dry_run_report`` keeps the last successful dry run's counts next to ``report``."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    file_name = models.CharField(max_length=255)
    file_path = models.CharField(max_length=1000)
    file_size = models.BigIntegerField(default=0)
    options = models.JSONField(default=dict, blank=True)
    preview = models.JSONField(default=dict, blank=True)
    dry_run = models.BooleanField(default=True)
    status = models.CharField(
        max_length=16, choices=ImportJobStatus.choices, default=ImportJobStatus.UPLOADED
    )
    stage = models.CharField(max_length=16, blank=True)
    records_read = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    dry_run_report = models.JSONField(default=dict, blank=True)
    report = models.JSONField(default=dict, blank=True)
    batch = models.ForeignKey(ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
