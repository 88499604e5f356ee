"""Training runs (every kind) and their logged metrics."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models import Project
from training.models.snapshots import DatasetSnapshot, JobStatus


class RunKind(models.TextChoices):
    REWARD = "reward", "Reward model"
    SFT = "sft", "Supervised fine-tuning"
    PPO = "ppo", "PPO"
    GRPO = "grpo", "GRPO"
    RLOO = "rloo", "RLOO"
    DPO = "dpo", "DPO"
    BATTLE = "battle", "Policy battle"
    GATE = "gate", "Capability gate"


class TrainingRun(models.Model):
    """One training job. ``config`` holds the job's config dataclass as JSON."""

    kind = models.CharField(max_length=8, choices=RunKind.choices, default=RunKind.REWARD)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    snapshot = models.ForeignKey(
        DatasetSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    base_model = models.CharField(max_length=500)
    config = models.JSONField(default=dict)
    seed = models.IntegerField(default=42)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    status_reason = models.TextField(blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    eta_seconds = models.FloatField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="Final/latest metrics and data report.")
    log_tail = models.TextField(blank=True)
    output_dir = models.CharField(max_length=500, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} run {self.pk} ({self.status})"


class RunMetric(models.Model):
    """One logged step of a run: ``values`` maps metric name -> number (loss, accuracy, kl, ...)."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="metrics")
    step = models.PositiveIntegerField()
    values = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "step", "id"]
        indexes = [models.Index(fields=["run", "step"], name="metric_run_step")]
