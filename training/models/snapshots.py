"""Job states, seeds and immutable dataset snapshots."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models import DB_INT_MAX, Project

#: Seeds are 0 .. SEED_MAX: they are stored in an integer column and numpy takes no negative seed.
SEED_MAX = DB_INT_MAX


def check_seed(seed) -> int:
    """The seed as an int in 0 .. SEED_MAX, else a ``ValidationError`` naming ``seed`` (forms and services
    call this so an oversized seed is a form error, not a database error)."""
    from django.core.exceptions import ValidationError

    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValidationError(
            {"seed": [f"Must be a whole number from 0 to {SEED_MAX}, not {str(seed)[:40]}."]}
        )
    return seed


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class ImmutableSnapshotError(ValueError):
    """Raised on an attempt to change a succeeded (published) dataset snapshot."""


class DatasetSnapshot(models.Model):
    """An immutable, versioned Bradley-Terry dataset made from judgments by a filter spec.

    Artifacts live in ``artifact_dir``: ``{train,validation,test}.jsonl`` (TRL standard form), the other
    formats, and ``judgment_ids.txt`` (exactly which judgments went in). Once ``status`` is ready nothing
    about the row or its files changes.
    """

    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField()
    projects = models.ManyToManyField(Project, related_name="snapshots")
    spec = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True)
    counts = models.JSONField(default=dict, blank=True)
    class_balance = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    judgment_ids_hash = models.CharField(max_length=64, blank=True)
    code_version = models.CharField(max_length=64, blank=True)
    artifact_dir = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="snapshot_name_version")]

    # What a succeeded snapshot is: its identity, spec, result and files. None of it may change afterwards.
    FROZEN_FIELDS = (
        "name",
        "version",
        "spec",
        "status",
        "counts",
        "class_balance",
        "content_hash",
        "judgment_ids_hash",
        "code_version",
        "artifact_dir",
        "completed_at",
    )

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def save(self, *args, **kwargs) -> None:
        """Save, refusing to change ``FROZEN_FIELDS`` of a snapshot whose stored status is succeeded.

        The check reads the stored row, so the save that moves a snapshot to succeeded (with its counts,
        hashes and folder) is allowed; every later change raises ``ImmutableSnapshotError``. (The build
        service writes its final state with one ``QuerySet.update``, which does not pass through here.)
        """
        if self.pk is not None and not self._state.adding:
            self._refuse_frozen_changes(kwargs.get("update_fields"))
        super().save(*args, **kwargs)

    def _refuse_frozen_changes(self, update_fields) -> None:
        fields = [f for f in self.FROZEN_FIELDS if update_fields is None or f in update_fields]
        if not fields:
            return
        stored = DatasetSnapshot.objects.filter(pk=self.pk).values("status", *fields).first()
        if stored is None or stored["status"] != JobStatus.SUCCEEDED:
            return
        changed = [f for f in fields if getattr(self, f) != stored[f]]
        if changed:
            raise ImmutableSnapshotError(
                f"Dataset snapshot {self.pk} ({self.name} v{stored.get('version', self.version)}) has "
                f"succeeded and is immutable: cannot change {', '.join(changed)}. "
                "Make a new snapshot (a new version) instead."
            )
