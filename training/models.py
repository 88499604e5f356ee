"""Training data: immutable dataset snapshots, training runs (RM / SFT / PPO / GRPO / RLOO / DPO), metrics,
the reward model registry, evaluations and promotions, reward-model sweeps, the policy registry with its
promotions, and capability gate results.

Lineage: Judgment ids -> DatasetSnapshot (spec, ids file, content hash) -> TrainingRun -> RewardModel ->
ModelEvaluation / Promotion; a policy TrainingRun -> PolicyVersion (card, lineage) -> PolicyPromotion.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

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


# --- the policy registry ----------------------------------------------------------------------------------

#: Run kinds whose output is a policy that can be registered (SFT runs are starting points, not policies).
#: Plain strings: a kind added later (``dpo``) needs no change here beyond this tuple.
POLICY_VERSION_KINDS = ("ppo", "grpo", "rloo", "dpo")


class PolicyVersion(models.Model):
    """A registered policy: one finished run's model directory with its ``preflab_policy_card.json``.

    ``lineage`` answers "which data, which reward model, which starting model": snapshot id and content hash,
    reward model id and version, the SFT model (the run's start and reference) and its base model, the
    battle project and the capability evaluation. ``gate`` is the latest gate verdict computed for it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="policy_versions")
    version = models.PositiveIntegerField()
    run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, help_text="The run kind that trained it (ppo, grpo, rloo, dpo).")
    artifact_dir = models.CharField(max_length=500)
    card = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="The run's config, as trained.")
    lineage = models.JSONField(default=dict, blank=True)
    gate = models.JSONField(default=dict, blank=True, help_text="The latest gate verdict (each check).")
    gate_checked_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=False)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="policy_project_version"),
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_active=True), name="policy_one_active_per_project"
            ),
            models.UniqueConstraint(fields=["run"], name="policy_one_version_per_run"),
        ]

    def __str__(self) -> str:
        return f"{self.project} policy v{self.version}"


class PolicyPromotion(models.Model):
    """A record of making a policy version the project's active one, with the gate's verdict; ``forced``
    when the gate failed and an engineer overrode it (``reason`` says why)."""

    policy = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="promotions")
    previous = models.ForeignKey(
        PolicyVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
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
        constraints = [
            models.CheckConstraint(
                condition=Q(forced=False) | ~Q(reason=""), name="policy_forced_promotion_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"promotion of {self.policy} ({'forced' if self.forced else 'gate passed'})"


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


class ModelRole(models.TextChoices):
    """Which model of a policy run an evaluation scored."""

    BASE = "base", "Base (pre-SFT)"
    SFT = "sft", "SFT"
    POLICY = "policy", "Policy"


class CapabilityResult(models.Model):
    """A model's score on one capability task set in one capability gate run (``training.policy.capability``),
    with its 95% bootstrap interval. ``details`` holds per-item outcomes (id, score, the answer cut short,
    the scorer's reasons), at most ``capability.runner.ITEMS_KEPT`` of them."""

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
