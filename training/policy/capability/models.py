"""Capability gate results: one row per (gate run, model role, task set) with the score and its bootstrap
interval. Imported at the end of ``training/models.py`` so Django finds it in the ``training`` app."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from training.models import TrainingRun


class ModelRole(models.TextChoices):
    BASE = "base", "Base (pre-SFT)"
    SFT = "sft", "SFT"
    POLICY = "policy", "Policy"


class CapabilityResult(models.Model):
    """A model's score on one capability task set in one gate run. ``details`` holds per-item outcomes
    (id, score, the answer cut short, the scorer's reasons), at most ``runner.ITEMS_KEPT`` of them."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="capability_results")
    policy_run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="+")
    model_role = models.CharField(max_length=8, choices=ModelRole.choices)
    model_path = models.CharField(max_length=500)
    task_set = models.CharField(max_length=32)
    score = models.FloatField()
    ci_low = models.FloatField()
    ci_high = models.FloatField()
    n = models.PositiveIntegerField()
    details = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "training"
        ordering = ["run", "task_set", "model_role"]
        constraints = [
            models.UniqueConstraint(fields=["run", "model_role", "task_set"], name="capability_one_per_cell"),
            models.CheckConstraint(
                condition=Q(ci_low__gte=0)
                & Q(ci_low__lte=F("score"))
                & Q(score__lte=F("ci_high"))
                & Q(ci_high__lte=1),
                name="capability_interval_ordered",
            ),
        ]
        indexes = [models.Index(fields=["policy_run", "task_set"], name="capability_policy_set")]

    def __str__(self) -> str:
        return f"{self.task_set} {self.model_role}: {self.score:.3f} (gate run {self.run_id})"
