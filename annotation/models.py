"""Annotation data: projects, prompts, candidate responses, comparison tasks, judgments and the people.

Invariants live in the database (constraints in ``Meta`` plus the composite foreign keys added by migration
0002): one judgment per (task, annotator), both candidates of a task belong to the task's prompt, and a task
never compares a candidate with itself.
"""

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


class TokenScope(models.TextChoices):
    ANNOTATE = "annotate", "Annotate"
    EXPORT = "export", "Export datasets"
    TRAIN = "train", "Train models"
    SCORE = "score", "Score with reward models"


class ApiToken(models.Model):
    """A per-user API token with scopes. Only a sha256 of the secret is stored; the secret is shown once."""

    PREFIX = "pl_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    # A token minted by another token draws on the rate-limit budget of the chain's first token as well as
    # its own, so minting cannot multiply a limited token's allowance (docs/security.md).
    budget_root = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="budget_children"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @staticmethod
    def hash_key(raw: str) -> str:
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    @classmethod
    def generate_key(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])

    def rate_buckets(self, default_limit: int) -> list[tuple[int, int]]:
        """The (bucket key, per-minute limit) pairs a request with this token is charged to: the chain's
        root first (shared by every token minted from it), then the token's own. A limit of 0 is none."""
        own = (self.pk, self.rate_limit_per_minute or default_limit)
        root = self.budget_root
        if root is None:
            return [own] if own[1] else []
        pairs = [(root.pk, root.rate_limit_per_minute or default_limit), own]
        return [pair for pair in pairs if pair[1]]


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
