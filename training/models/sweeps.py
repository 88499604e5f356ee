"""Reward-model hyper-parameter sweeps and their trials."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models import Project
from training.models.runs import TrainingRun
from training.models.snapshots import DatasetSnapshot, JobStatus


class RewardModelSweep(models.Model):
    """A hyper-parameter search over reward-model configs on one snapshot, as one Optuna study kept in the
    project's database (``study_name``), so that every training worker asks and tells the same study.

    Each trial is an ordinary reward run (``SweepTrial.run``) scored on the validation split only; when the
    trials are done the chosen config is trained once more (``final_run``, an ordinary registered run) and
    that run alone reads the test split (``test_result``; ``test_evaluations`` counts the reads)."""

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.PROTECT, related_name="sweeps")
    base_model = models.CharField(max_length=500)
    config = models.JSONField(default=dict, help_text="The parsed SweepConfig (space, n_trials, base, ...).")
    seed = models.IntegerField(default=42)
    study_name = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    status_reason = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    best_trial_number = models.IntegerField(null=True, blank=True)
    best_value = models.FloatField(null=True, blank=True)
    chosen_config = models.JSONField(default=dict, blank=True)
    final_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    test_result = models.JSONField(default=dict, blank=True)
    test_evaluations = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"sweep {self.pk} ({self.status})"


class TrialState(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class SweepTrial(models.Model):
    """One Optuna trial of a sweep and the reward run that trained it. ``number`` is the study's trial
    number (it goes on across a resume); ``value`` is the objective on the validation split."""

    sweep = models.ForeignKey(RewardModelSweep, on_delete=models.CASCADE, related_name="trials")
    run = models.OneToOneField(TrainingRun, on_delete=models.CASCADE, related_name="sweep_trial")
    number = models.PositiveIntegerField()
    params = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=TrialState.choices, default=TrialState.RUNNING)
    value = models.FloatField(null=True, blank=True)
    validation = models.JSONField(default=dict, blank=True, help_text="Headline validation metrics.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sweep", "number"]
        constraints = [models.UniqueConstraint(fields=["sweep", "number"], name="sweep_trial_number")]

    def __str__(self) -> str:
        return f"sweep {self.sweep_id} trial {self.number}"
