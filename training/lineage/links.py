"""Links between lineage nodes: the short item a "built from this" relation lists, and the two queries that
connect runs and reward models (the run that produced a model folder, the policy runs a reward model
rewarded)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.urls import reverse

from training.lineage.nodes import link
from training.models import RewardModel, RunKind, TrainingRun
from training.policy.selectors import POLICY_KINDS


def run_page(run: TrainingRun) -> str:
    name = "training:run_detail" if run.kind == RunKind.REWARD else "training:policy_detail"
    return reverse(name, args=[run.pk])


def run_title(run: TrainingRun) -> str:
    return f"{run.get_kind_display()} run #{run.pk}"


def run_link(run: TrainingRun) -> dict[str, Any]:
    return {**link("run", run.pk, run_title(run), run_page(run)), "status": run.status}


def reward_model_link(rm: RewardModel) -> dict[str, Any]:
    page = reverse("training:reward_model_detail", args=[rm.pk])
    return link("reward_model", rm.pk, f"{rm.project.name} reward model v{rm.version}", page)


def producing_run(model_dir: str, *, exclude: int | None = None) -> TrainingRun | None:
    """The run whose output is ``model_dir`` (an SFT model a PPO run starts from), or None (a hub id)."""
    if not model_dir or "/" not in model_dir:
        return None
    qs = TrainingRun.objects.filter(Q(output_dir=model_dir) | Q(summary__model_dir=model_dir))
    return qs.exclude(pk=exclude).select_related("project", "snapshot").order_by("-id").first()


def rewarded_by(reward_model_ids: list[int]):
    """Policy runs whose reward came (or is configured to come) from one of these reward models."""
    return TrainingRun.objects.filter(kind__in=POLICY_KINDS).filter(
        Q(summary__reward__reward_model_id__in=reward_model_ids)
        | Q(config__reward__reward_model_id__in=reward_model_ids)
    )


def evaluation_link(evaluation) -> dict[str, Any]:
    item = reward_model_link(evaluation.reward_model)
    accuracy = (evaluation.metrics or {}).get("accuracy")
    return {**item, "split": evaluation.split, "accuracy": accuracy, "evaluation_id": evaluation.pk}
