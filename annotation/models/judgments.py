"""Judgments (pairwise and expanded rankings), task leases and skips, adjudications."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models.items import ComparisonTask, Prompt
from annotation.models.projects import Choice, Project


class JudgmentSource(models.TextChoices):
    HUMAN = "human", "Human, pairwise"
    RANKING = "ranking", "Expanded from a K-way ranking"
    PRIOR = "prior", "Imported prior preference"


# The judgments that fill one of a task's k slots and decide its status: not extra (a late answer past k) and
# not an imported prior (the dataset's own preference, not an annotator's work). Submit, undo, a change of k
# and the dashboard's consensus all count with this.
COUNTED_JUDGMENTS = Q(is_extra=False) & ~Q(source=JudgmentSource.PRIOR)


class Ranking(models.Model):
    """A K-way ranking of a prompt's candidates by one annotator (best first); expands into judgments."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rankings")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="rankings")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rankings")
    order = models.JSONField(help_text="Candidate ids, best first.")
    ties = models.JSONField(default=list, blank=True, help_text="Index pairs (i, i+1) that are tied.")
    time_spent_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt", "annotator"], name="ranking_once_per_annotator"),
        ]


class Judgment(models.Model):
    """One annotator's answer for one comparison task."""

    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="judgments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgments"
    )
    choice = models.CharField(max_length=8, choices=Choice.choices)
    strength = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="1 slightly, 2 clearly, 3 much better."
    )
    rationale = models.TextField(blank=True)
    criteria = models.JSONField(default=dict, blank=True)
    time_spent_ms = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=64, blank=True, null=True)
    source = models.CharField(max_length=8, choices=JudgmentSource.choices, default=JudgmentSource.HUMAN)
    ranking = models.ForeignKey(Ranking, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # A late submit whose slot was taken by someone else is kept, but does not count toward k.
    is_extra = models.BooleanField(default=False)
    # Served by the random share of a "mix" project (not chosen by a model): the unbiased evaluation sample.
    served_random = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="judgment_once_per_annotator"),
            models.UniqueConstraint(
                fields=["annotator", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="judgment_idempotency_key",
            ),
            models.CheckConstraint(
                condition=Q(choice__in=[c.value for c in Choice]), name="judgment_choice_valid"
            ),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | (Q(strength__gte=1) & Q(strength__lte=3)),
                name="judgment_strength_1_3",
            ),
        ]
        indexes = [
            models.Index(fields=["annotator", "created_at"], name="judgment_annotator_time"),
            # Judgment lists filtered by annotator page by id (cursor): one annotator's share of a big project
            # is otherwise found by walking the whole primary key backwards.
            models.Index(fields=["annotator", "id"], name="judgment_annotator_id"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} on {self.task_id}: {self.choice}"


class TaskLease(models.Model):
    """A task slot held by an annotator until ``expires_at``; expired leases return to the pool."""

    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="leases")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leases")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    # Copied onto the judgment made under this lease.
    served_random = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "annotator"], name="lease_once_per_annotator")]


class TaskSkip(models.Model):
    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="skips")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="skips")
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "annotator"], name="skip_once_per_annotator")]


class Adjudication(models.Model):
    """A reviewer's final answer for a task whose judgments disagree."""

    task = models.OneToOneField(ComparisonTask, on_delete=models.CASCADE, related_name="adjudication")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    choice = models.CharField(max_length=8, choices=Choice.choices)
    strength = models.PositiveSmallIntegerField(null=True, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
