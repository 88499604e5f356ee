"""Prompts, candidate responses and the comparison tasks built from them."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from annotation.models.projects import Choice, Project


class Prompt(models.Model):
    """A prompt: plain text, or chat messages ([{"role","content"}, ...]) with ``text`` as a rendering."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField()
    messages = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="prompt_unique_content"),
        ]

    def __str__(self) -> str:
        return self.text[:80]


class Candidate(models.Model):
    """A candidate response to a prompt, with the model that produced it."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="candidates")
    text = models.TextField()
    model_name = models.CharField(max_length=200, blank=True)
    generation_params = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "content_hash"], name="candidate_unique_content"),
            # Target of the composite foreign keys from ComparisonTask (migration 0002).
            models.UniqueConstraint(fields=["id", "prompt"], name="candidate_id_prompt"),
        ]

    def __str__(self) -> str:
        return self.text[:80]


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETE = "complete", "Complete"
    NEEDS_REVIEW = "needs_review", "Needs review"
    ADJUDICATED = "adjudicated", "Adjudicated"


class TaskKind(models.TextChoices):
    STANDARD = "standard", "Standard"
    GOLD = "gold", "Gold (known answer)"
    REPEAT = "repeat", "Swapped repeat"
    SPOT_CHECK = "spot_check", "Reward spot check"
    BATTLE = "battle", "Model battle"


class ComparisonTask(models.Model):
    """A prompt and an ordered pair of candidates. The A/B order is randomised at creation and stored."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="tasks")
    candidate_a = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="+")
    candidate_b = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=TaskKind.choices, default=TaskKind.STANDARD)
    gold_choice = models.CharField(max_length=8, choices=Choice.choices, blank=True)
    gold_explanation = models.TextField(blank=True)
    repeat_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="repeats"
    )
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    # Denormalised count of counted (non-extra) judgments; kept by the submit service in the same
    # transaction. Assignment orders by it ("closest to completion first").
    judgment_count = models.PositiveIntegerField(default=0)
    priority = models.IntegerField(default=0)
    # Served first (highest first) under serving order "uncertainty" / "mix"; null: not scored. Written in
    # batches by the reward-model scoring job (1 - 2|p - 0.5|) or by active model pairing (battles).
    priority_score = models.FloatField(null=True, blank=True)
    # The active reward model's P(A is better). Never shown to annotators (anchoring); reviewers see it labelled.
    predicted_preference = models.FloatField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(candidate_a=F("candidate_b")), name="task_no_self_comparison"
            ),
            models.CheckConstraint(
                condition=Q(kind="gold", gold_choice__in=[c.value for c in Choice]) | ~Q(kind="gold"),
                name="task_gold_has_answer",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "status", "-judgment_count", "id"], name="task_queue_idx"),
            # The task browser pages newest first by id within a project (keyset, no OFFSET).
            models.Index(fields=["project", "id"], name="task_project_id_idx"),
            # Task lists filtered by kind (gold, repeat) page by id: without it, a seq scan of the project.
            models.Index(fields=["project", "kind", "id"], name="task_project_kind_id"),
            # The "uncertainty" order walks this index; only open, scored tasks are in it.
            models.Index(
                F("project"),
                F("priority_score").desc(),
                F("judgment_count").desc(),
                F("id").asc(),
                name="task_priority_idx",
                condition=Q(status="open", priority_score__isnull=False),
            ),
            # The random share of serving order "mix" starts at a random id among the open tasks (min/max and
            # the walk stay on open rows, however many closed tasks a project holds).
            models.Index(fields=["project", "id"], name="task_open_id_idx", condition=Q(status="open")),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.project_id})"
