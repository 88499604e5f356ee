"""Reads of the policy loop: policy runs (and battles among them) a user may see, a run's live state (metrics, samples, warnings),
and the evaluation gate's verdicts (the RM's opinion next to the humans' leaderboard of the battle)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from training.models import RunKind, TrainingRun
from training.runs import run_list, run_live_state

POLICY_KINDS = (RunKind.SFT, RunKind.PPO, RunKind.GRPO, RunKind.RLOO, RunKind.DPO)
#: Kinds listed with the policy runs: the policies and the battles among finished ones.
LISTED_KINDS = (*POLICY_KINDS, RunKind.BATTLE)

#: Metrics plotted on the run page, in groups (one chart per group).
CHART_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "reward": ("Reward (mean, std)", ("reward_mean", "reward_std")),
    "kl": ("KL to the reference (nats / response)", ("kl",)),
    "entropy": ("Policy entropy (nats / token)", ("entropy",)),
    "clip": ("Clip fraction, approx. KL of the update", ("clip_fraction", "approx_kl")),
    "value_loss": ("Value loss", ("value_loss",)),
    "length": ("Response length (tokens)", ("response_length_mean",)),
    "diversity": ("Diversity (distinct-1, distinct-2)", ("distinct_1", "distinct_2")),
    "loss": ("Loss", ("loss", "policy_loss")),
    "token_accuracy": ("Token accuracy (SFT; DPO: chosen answers)", ("token_accuracy",)),
    "dpo_rewards": (
        "DPO implicit reward: beta x log-ratio to the reference (chosen, rejected, margin)",
        ("rewards_chosen", "rewards_rejected", "rewards_margins"),
    ),
    "dpo_accuracy": ("DPO: share of pairs the implicit reward ranks right", ("rewards_accuracies",)),
    "logps": ("DPO: log-probability of the chosen and rejected answers", ("logps_chosen", "logps_rejected")),
}


def policy_run_list(*, projects=None, kind: str | None = None) -> QuerySet[TrainingRun]:
    qs = run_list(projects=projects).filter(kind__in=LISTED_KINDS)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def policy_run_state(run: TrainingRun) -> dict[str, Any]:
    """The generic live state plus the policy extras kept in the summary."""
    state = run_live_state(run)
    summary = run.summary or {}
    state["kind"] = run.kind
    state["warnings"] = summary.get("warnings", [])
    state["samples"] = summary.get("samples", [])
    state["battle"] = summary.get("battle")
    return state


def battle_verdict(run: TrainingRun, *, n_boot: int = 200) -> dict[str, Any] | None:
    """RM scores and lengths per model (from the run) next to the humans' leaderboard of the battle project."""
    battle = (run.summary or {}).get("battle") or {}
    project_id = battle.get("project_id")
    if not project_id:
        return None
    from annotation.models import ComparisonTask, Project
    from annotation.selectors.quality import model_leaderboard

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"missing": True, **battle}
    board = model_leaderboard(project, n_boot=n_boot)
    tasks = ComparisonTask.objects.filter(project=project)
    return {
        "project_id": project.pk,
        "project_name": project.name,
        "tasks": tasks.count(),
        "judged_tasks": tasks.filter(judgment_count__gt=0).count(),
        "models": battle.get("models", {}),
        "rm_pairwise": battle.get("rm_pairwise", {}),
        "leaderboard": board,
    }


# --- the policy registry ----------------------------------------------------------------------------------


def policy_version_list(*, projects=None) -> QuerySet:
    """Registered policy versions (of the given projects), newest first per project."""
    from training.models import PolicyVersion

    qs = PolicyVersion.objects.select_related("project", "run", "registered_by")
    if projects is not None:
        qs = qs.filter(project__in=projects)
    return qs


def policy_version_of_run(run: TrainingRun):
    from training.models import PolicyVersion

    return PolicyVersion.objects.filter(run=run).first()


def policy_promotion_list(*, policy) -> QuerySet:
    from training.models import PolicyPromotion

    return PolicyPromotion.objects.filter(policy__project=policy.project).select_related(
        "policy", "previous", "promoted_by"
    )


def spot_check_counts(run: TrainingRun) -> dict[str, int]:
    """Reviewers' spot-check verdicts on the run's samples, per verdict."""
    from annotation.selectors.spot_checks import spot_check_verdict_counts

    return spot_check_verdict_counts(run_id=run.pk)


def policy_gate_inputs(run: TrainingRun):
    """What the promotion gate's checks read, gathered from the run, its battle project and the verdicts."""
    from annotation.models import Project
    from annotation.selectors.quality import model_leaderboard
    from training.models import RunMetric
    from training.policy.gate import GateInputs

    summary = run.summary or {}
    battle = summary.get("battle") or {}
    leaderboard, note = None, ""
    project = (
        Project.objects.filter(pk=battle.get("project_id")).first() if battle.get("project_id") else None
    )
    if project is not None:
        leaderboard = model_leaderboard(project)
    else:
        note = battle.get("skipped") or ("battle project deleted" if battle.get("project_id") else "")
    history = [
        {"step": step, **values}
        for step, values in RunMetric.objects.filter(run=run)
        .order_by("step", "id")
        .values_list("step", "values")
    ]
    return GateInputs(
        capability=summary.get("capability"),
        leaderboard=leaderboard,
        battle_note=note,
        history=history,
        battle_models=battle.get("models") or {},
        verdict_counts=spot_check_counts(run),
    )
