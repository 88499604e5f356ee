"""The reward model registry: models, evaluations, promotions, live agreement, task-scoring jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Project
from training.models.runs import TrainingRun
from training.models.snapshots import DatasetSnapshot


class RewardModel(models.Model):
    """A registered reward model version. ``artifact_dir`` is a ``save_pretrained`` directory of a
    sequence-classification model (one label) with its tokenizer and ``preflab_card.json``."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reward_models")
    version = models.PositiveIntegerField()
    run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    snapshot = models.ForeignKey(
        DatasetSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="reward_models"
    )
    base_model = models.CharField(max_length=500)
    artifact_dir = models.CharField(max_length=500)
    card = models.JSONField(default=dict, blank=True)
    reward_mean = models.FloatField(null=True, blank=True)
    reward_std = models.FloatField(null=True, blank=True)
    max_length = models.PositiveIntegerField(default=512)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="rm_project_version"),
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_active=True), name="rm_one_active_per_project"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} RM v{self.version}"


class ModelEvaluation(models.Model):
    """Metrics of a reward model on one split of a snapshot (accuracy, margin, ECE, length bias, ...)."""

    reward_model = models.ForeignKey(RewardModel, on_delete=models.CASCADE, related_name="evaluations")
    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.PROTECT, related_name="evaluations")
    split = models.CharField(max_length=16, default="test")
    metrics = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class Promotion(models.Model):
    """A record of making a reward model the active one for its project, with the gate's verdict."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="promotions")
    reward_model = models.ForeignKey(RewardModel, on_delete=models.CASCADE, related_name="promotions")
    previous = models.ForeignKey(
        RewardModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    forced = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    gate = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class LiveAgreement(models.Model):
    """One measurement of a reward model's accuracy on human A/B votes made after its snapshot (the
    ``reward_model_live_agreement`` selector), kept as a history; ``baseline`` is the model's test-split
    accuracy at that time, so a drop is ``baseline - accuracy``."""

    reward_model = models.ForeignKey(RewardModel, on_delete=models.CASCADE, related_name="live_agreements")
    n = models.PositiveIntegerField(default=0)
    accuracy = models.FloatField(null=True, blank=True)
    low = models.FloatField(null=True, blank=True)
    high = models.FloatField(null=True, blank=True)
    random_n = models.PositiveIntegerField(default=0)
    random_accuracy = models.FloatField(null=True, blank=True)
    baseline = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["reward_model", "-id"], name="live_agreement_rm_latest")]

    @property
    def drop(self) -> float | None:
        if self.accuracy is None or self.baseline is None:
            return None
        return round(self.baseline - self.accuracy, 4)


class TaskScoringStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class TaskScoringJob(models.Model):
    """The active reward model scoring a project's open tasks: writes each task's ``predicted_preference`` and
    ``priority_score`` (uncertainty) in batches. Progress is ``scored`` of ``total``; setting
    ``cancel_requested`` stops it between two batches (what was written stays)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="task_scoring_jobs")
    reward_model = models.ForeignKey(
        RewardModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="task_scoring_jobs"
    )
    status = models.CharField(
        max_length=16, choices=TaskScoringStatus.choices, default=TaskScoringStatus.QUEUED
    )
    total = models.PositiveIntegerField(default=0)
    scored = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"task scoring {self.pk} ({self.project_id})"
