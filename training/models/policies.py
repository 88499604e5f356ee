"""The policy registry (versions, promotions) and the capability gate's results."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from annotation.models import Project
from training.models.runs import TrainingRun

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
