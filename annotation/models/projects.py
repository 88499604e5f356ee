"""Projects, their settings and caps, members and invites; the shared choice enums."""

from __future__ import annotations

import hashlib
import json
import math
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q


def content_hash(value: object) -> str:
    """A stable sha256 of text or JSON-able content (chat messages), used to skip duplicates."""
    if isinstance(value, str):
        payload = value
    else:
        payload = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Role(models.TextChoices):
    """Global roles (Django auth groups of the same name)."""

    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    ENGINEER = "engineer", "ML engineer"
    ADMIN = "admin", "Admin"


class Choice(models.TextChoices):
    A = "A", "A is better"
    B = "B", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class PairingStrategy(models.TextChoices):
    ALL_PAIRS = "all_pairs", "All pairs"
    RANDOM_K = "random_k", "Random k pairs per prompt"
    ADJACENT = "adjacent", "Adjacent pairs after shuffle"


class ServingOrder(models.TextChoices):
    QUEUE = "queue", "Queue order (closest to completion first)"
    UNCERTAINTY = "uncertainty", "Highest priority score first (most uncertain / most informative)"
    MIX = "mix", "Highest priority score first, with a share served at random"


class ModelPairing(models.TextChoices):
    """How a project with named models (a battle) decides which model pair is judged next."""

    UNIFORM = "uniform", "Every pair equally often"
    ACTIVE = "active", "The pair that shrinks the leaderboard intervals fastest"


def _ranking_length_default() -> int:
    return settings.PREFLAB_RANKING_LENGTH_DEFAULT


def validate_ranking_length(value: int) -> None:
    """A ranking of n candidates expands into n*(n-1)/2 judgments, so n is capped per project, and the
    project's cap by the server's hard maximum (``PREFLAB_MAX_RANKING_LENGTH``)."""
    hard = settings.PREFLAB_MAX_RANKING_LENGTH
    if not 2 <= value <= hard:
        raise ValidationError(f"Must be between 2 and {hard} (PREFLAB_MAX_RANKING_LENGTH).")


#: The largest value of a PostgreSQL ``integer`` column: API and form fields that write one say so, so a
#: bigger number is a 400 naming the field instead of a database error.
DB_INT_MAX = 2**31 - 1

#: Bounds of project settings (docs/security.md); the database checks them too.
PAIRS_PER_PROMPT_MAX = 1000
LEASE_SECONDS_MAX = 7 * 24 * 3600
UNDO_GRACE_SECONDS_MAX = 24 * 3600
EXTRA_CRITERIA_MAX = 20


def validate_extra_criteria(value) -> None:
    if not isinstance(value, list) or not all(isinstance(c, str) and c.strip() for c in value):
        raise ValidationError("Must be a list of non-empty strings.")
    if len(value) > EXTRA_CRITERIA_MAX:
        raise ValidationError(f"At most {EXTRA_CRITERIA_MAX} extra criteria.")
    if any(len(c) > 100 for c in value):
        raise ValidationError("Each criterion is at most 100 characters.")


def validate_quality_settings(value) -> None:
    """An object of known ``QualitySettings`` keys with numbers of the right kind (unknown keys were silently
    ignored before, so a typo looked like a setting that did nothing)."""
    from annotation.quality.flags import QualitySettings

    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object.")
    defaults = QualitySettings()
    errors = []
    for key, item in value.items():
        if not hasattr(defaults, key):
            errors.append(f"unknown setting '{key}'")
            continue
        want = type(getattr(defaults, key))
        ok = isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item)
        if not ok or (want is int and not float(item).is_integer()) or item < 0:
            errors.append(f"'{key}' must be a non-negative {'whole ' if want is int else ''}number")
    if errors:
        raise ValidationError("; ".join(errors) + ".")


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    overlap_k = models.PositiveSmallIntegerField(default=1, help_text="Judgments wanted per task.")
    pairing_strategy = models.CharField(
        max_length=16, choices=PairingStrategy.choices, default=PairingStrategy.ALL_PAIRS
    )
    pairs_per_prompt = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(PAIRS_PER_PROMPT_MAX)],
        help_text="k for the random_k strategy.",
    )
    max_ranking_length = models.PositiveSmallIntegerField(
        default=_ranking_length_default,
        validators=[validate_ranking_length],
        help_text="Most candidates one K-way ranking may order (at most PREFLAB_MAX_RANKING_LENGTH).",
    )
    allow_tie = models.BooleanField(default=True)
    allow_both_bad = models.BooleanField(default=True)
    ask_strength = models.BooleanField(default=True, help_text="Ask slightly / clearly / much better.")
    rationale_required = models.BooleanField(default=False)
    extra_criteria = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_extra_criteria],
        help_text='Extra per-task questions, e.g. ["helpful", "harmless"].',
    )
    gold_rate = models.FloatField(default=0.0, help_text="Share of served tasks that are gold items.")
    gold_feedback = models.BooleanField(default=True, help_text="Tell annotators the gold answer after.")
    swap_repeat_rate = models.FloatField(default=0.0, help_text="Share of judged tasks repeated A/B-swapped.")
    lease_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(1), MaxValueValidator(LEASE_SECONDS_MAX)]
    )
    undo_grace_seconds = models.PositiveIntegerField(
        default=30, validators=[MaxValueValidator(UNDO_GRACE_SECONDS_MAX)]
    )
    quality_settings = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_quality_settings],
        help_text="Thresholds for quality flags.",
    )
    retrain_after_judgments = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Retrain the reward model automatically after this many new judgments since the last "
        "snapshot; empty: the server default (PREFLAB_RETRAIN_AFTER_JUDGMENTS); 0: never automatically.",
    )
    retrain_agreement_drop = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Retrain when the active reward model's live agreement with new human votes falls this far "
        "(absolute accuracy, e.g. 0.05) below its test accuracy; empty or 0: off.",
    )
    daily_target = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Judgments each annotator aims for per day (shown as a progress bar); empty: no target.",
    )
    serving_order = models.CharField(
        max_length=16,
        choices=ServingOrder.choices,
        default=ServingOrder.QUEUE,
        db_default=ServingOrder.QUEUE,
        help_text="Which open task an annotator gets next. Tasks without a priority score are served in queue "
        "order after the scored ones (a project without an active reward model behaves as 'queue').",
    )
    random_share = models.FloatField(
        default=0.1,
        db_default=0.1,
        help_text="With serving order 'mix' (and active model pairing): share of tasks served at random; "
        "their judgments are marked served_random so evaluation can use only them.",
    )
    model_pairing = models.CharField(
        max_length=16,
        choices=ModelPairing.choices,
        default=ModelPairing.UNIFORM,
        db_default=ModelPairing.UNIFORM,
        help_text="Battle projects: 'active' re-scores the open tasks by model pair after each vote "
        "(annotation.quality.active_pairing) and serves the most informative pair first.",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ProjectMembership", related_name="projects", blank=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap_k__gte=1), name="project_overlap_k_positive"),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="project_gold_rate_0_1"
            ),
            models.CheckConstraint(
                condition=Q(swap_repeat_rate__gte=0) & Q(swap_repeat_rate__lte=1),
                name="project_swap_rate_0_1",
            ),
            models.CheckConstraint(
                condition=Q(pairs_per_prompt__gte=1) & Q(pairs_per_prompt__lte=PAIRS_PER_PROMPT_MAX),
                name="project_pairs_per_prompt_range",
            ),
            models.CheckConstraint(
                condition=Q(lease_seconds__gte=1) & Q(lease_seconds__lte=LEASE_SECONDS_MAX),
                name="project_lease_seconds_range",
            ),
            models.CheckConstraint(
                condition=Q(undo_grace_seconds__lte=UNDO_GRACE_SECONDS_MAX), name="project_undo_grace_max"
            ),
            models.CheckConstraint(
                condition=Q(random_share__gte=0) & Q(random_share__lte=1), name="project_random_share_0_1"
            ),
            models.CheckConstraint(
                condition=Q(retrain_agreement_drop__isnull=True)
                | (Q(retrain_agreement_drop__gte=0) & Q(retrain_agreement_drop__lte=1)),
                name="project_retrain_drop_0_1",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ProjectMembership(models.Model):
    """Who may see and work on a project. Admins see every project without a membership."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


class ProjectInvite(models.Model):
    """A single-use link that adds whoever opens it (a new account or a logged-in one) to a project with
    ``role``, until ``expires_at``. Only a sha256 of the secret is stored; the link is shown once."""

    PREFIX = "inv_"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invites")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")), name="invite_expires_after_create"
            ),
        ]

    def __str__(self) -> str:
        return f"invite to {self.project} as {self.role}"

    @staticmethod
    def hash_token(raw: str) -> str:
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    @classmethod
    def generate_token(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)
