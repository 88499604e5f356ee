"""Quality records: spot-check verdicts on policy rollouts, annotator flags, quality reports."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models.items import Candidate, ComparisonTask
from annotation.models.projects import Project


class SpotCheckVerdictChoice(models.TextChoices):
    """What a reviewer says of one spot-checked sample: the ways reward hacking shows, and "fine"."""

    FINE = "fine", "Fine"
    REWARD_HACKING = "reward_hacking", "Reward hacking"
    LENGTH_INFLATION = "length_inflation", "Length inflation"
    EMPTY_TEMPLATE = "empty_template", "Empty or template answer"
    UNSAFE = "unsafe", "Unsafe"
    HALLUCINATION = "hallucination", "Hallucination"


SPOT_CHECK_NOTE_MAX = 2000


class SpotCheckVerdict(models.Model):
    """A reviewer's verdict on one sample of a spot-check task (a candidate of a ``spot_check`` task), once
    per (sample, reviewer); answering again changes it. ``run_id`` is the policy run that produced the sample
    (copied from the candidate when the verdict is given), so training counts a run's verdicts by id without
    knowing where spot checks come from."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="spot_check_verdicts")
    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="spot_check_verdicts")
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="spot_check_verdicts")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    verdict = models.CharField(max_length=20, choices=SpotCheckVerdictChoice.choices)
    note = models.CharField(max_length=SPOT_CHECK_NOTE_MAX, blank=True)
    run_id = models.BigIntegerField(null=True, blank=True, help_text="Policy run that produced the sample.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["candidate", "reviewer"], name="spot_verdict_once_per_reviewer"),
            models.CheckConstraint(
                condition=Q(verdict__in=[c.value for c in SpotCheckVerdictChoice]),
                name="spot_verdict_valid",
            ),
        ]
        indexes = [models.Index(fields=["run_id", "verdict"], name="spot_verdict_run")]


class FlagStatus(models.TextChoices):
    OPEN = "open", "Open (work quarantined)"
    CLEARED = "cleared", "Cleared by a reviewer"


class AnnotatorFlag(models.Model):
    """An automatic or manual quality flag. An open flag quarantines the annotator's judgments in that
    project from exports; nothing is deleted."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="flags")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="flags")
    reason = models.CharField(max_length=64)
    evidence = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=FlagStatus.choices, default=FlagStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    cleared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cleared_at = models.DateTimeField(null=True, blank=True)
    clear_note = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "status"], name="flag_project_status")]


class ProjectQualityReport(models.Model):
    """A project's expensive quality statistics (agreement, annotator table, Dawid-Skene reliability, model
    leaderboard) as the quality job last computed them. Pages and the API read this row and say how fresh it
    is; they never compute over the whole project themselves."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="quality_report")
    computed_at = models.DateTimeField(null=True, blank=True)
    judgment_count = models.PositiveIntegerField(default=0, help_text="Counted judgments the report covers.")
    last_judgment_id = models.BigIntegerField(
        default=0, help_text="Highest judgment id the report covers (later ones are 'new since')."
    )
    duration_ms = models.PositiveIntegerField(default=0)
    payload = models.JSONField(default=dict, blank=True)
    requested_at = models.DateTimeField(
        null=True, blank=True, help_text="A reviewer asked for a recompute at this time (cleared when done)."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"quality of {self.project_id} at {self.computed_at}"
