"""Reward-model registry writes: register a trained model as the project's next version, evaluate a
registered model on a snapshot split, and promote a version to active through an evaluation gate (or a
recorded forced override)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from annotation.models import ServingOrder
from training.datasets.reader import read_snapshot_split
from training.models import DatasetSnapshot, ModelEvaluation, Promotion, RewardModel, TrainingRun
from training.rewardmodels.evaluation import CARD_NAME, evaluate_split


@dataclass
class PromotionGate:
    """The bar a reward model must clear to become active."""

    min_accuracy: float = 0.55
    """Minimum pairwise accuracy on the candidate's snapshot test split."""
    tolerance: float = 0.01
    """How much worse than the current active model (same snapshot, same split) the candidate may be."""
    split: str = "test"


class PromotionRefused(ValidationError):
    """The gate said no; ``gate`` holds the verdict."""

    def __init__(self, message: str, gate: dict):
        super().__init__(message)
        self.gate = gate


def _write_card_file(artifact_dir: str, card: dict[str, Any]) -> None:
    path = Path(artifact_dir) / CARD_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def reward_model_register(
    *, run: TrainingRun, artifact_dir: str, card: dict[str, Any], metrics: dict[str, Any], split: str = "test"
) -> RewardModel:
    """Register a finished run's artifact as the next version for its project, with its evaluation."""
    project = run.project or (run.snapshot.projects.order_by("pk").first() if run.snapshot else None)
    if project is None:
        raise ValidationError("the run has no project to register its reward model under")
    for _attempt in range(5):  # two runs finishing at once race for the version number
        try:
            with transaction.atomic():
                version = (
                    RewardModel.objects.filter(project=project).aggregate(v=Max("version"))["v"] or 0
                ) + 1
                full_card = {
                    **card,
                    "version": version,
                    "project": project.name,
                    "lineage": {
                        "run_id": run.pk,
                        "snapshot_id": run.snapshot_id,
                        "snapshot_hash": card.get("snapshot_hash", ""),
                        "retry_of": run.retry_of_id,
                        "base_model": run.base_model,
                    },
                }
                reward_model = RewardModel.objects.create(
                    project=project,
                    version=version,
                    run=run,
                    snapshot=run.snapshot,
                    base_model=run.base_model,
                    artifact_dir=artifact_dir,
                    card=full_card,
                    reward_mean=card.get("reward_mean"),
                    reward_std=card.get("reward_std"),
                    max_length=int(card.get("max_length") or 512),
                )
                ModelEvaluation.objects.create(
                    reward_model=reward_model, snapshot=run.snapshot, split=split, metrics=metrics
                )
                _write_card_file(artifact_dir, full_card)
            return reward_model
        except IntegrityError:
            continue
    raise ValidationError("could not allocate a reward model version")


def reward_model_evaluate(
    *, reward_model: RewardModel, snapshot: DatasetSnapshot, split: str = "test", batch_size: int = 16
) -> ModelEvaluation:
    """Score a snapshot split with a registered model and store the report (loads the model in-process)."""
    from transformers import AutoTokenizer

    from training.rm_ensemble import load_reward_model

    rows, meta = read_snapshot_split(snapshot.artifact_dir, split)
    if not rows:
        raise ValidationError(f"snapshot {snapshot} has no '{split}' pairs")
    tokenizer = AutoTokenizer.from_pretrained(reward_model.artifact_dir)
    model = load_reward_model(reward_model.artifact_dir)  # an ensemble scores with its members' mean
    metrics = evaluate_split(
        model, tokenizer, rows, meta, max_length=reward_model.max_length, batch_size=batch_size
    )
    return ModelEvaluation.objects.create(
        reward_model=reward_model, snapshot=snapshot, split=split, metrics=metrics
    )


def _evaluation_on(reward_model: RewardModel, snapshot: DatasetSnapshot, split: str) -> ModelEvaluation:
    found = ModelEvaluation.objects.filter(reward_model=reward_model, snapshot=snapshot, split=split).first()
    return found or reward_model_evaluate(reward_model=reward_model, snapshot=snapshot, split=split)


def promotion_gate_check(*, candidate: RewardModel, gate: PromotionGate | None = None) -> dict[str, Any]:
    """The gate's verdict: {passed, reasons, candidate_accuracy, active_accuracy, ...} (may evaluate)."""
    gate = gate or PromotionGate()
    if candidate.snapshot is None:
        return {"passed": False, "reasons": ["the candidate has no snapshot to evaluate on"], **asdict(gate)}
    cand_eval = _evaluation_on(candidate, candidate.snapshot, gate.split)
    cand_acc = cand_eval.metrics.get("accuracy")
    verdict: dict[str, Any] = {
        **asdict(gate),
        "snapshot_id": candidate.snapshot_id,
        "candidate_id": candidate.pk,
        "candidate_accuracy": cand_acc,
        "active_id": None,
        "active_accuracy": None,
        "reasons": [],
    }
    if cand_acc is None or cand_acc < gate.min_accuracy:
        verdict["reasons"].append(f"accuracy {cand_acc} is below the minimum {gate.min_accuracy}")
    active = (
        RewardModel.objects.filter(project=candidate.project, is_active=True).exclude(pk=candidate.pk).first()
    )
    if active is not None:
        active_acc = _evaluation_on(active, candidate.snapshot, gate.split).metrics.get("accuracy")
        verdict["active_id"], verdict["active_accuracy"] = active.pk, active_acc
        if active_acc is not None and cand_acc is not None and cand_acc < active_acc - gate.tolerance:
            verdict["reasons"].append(
                f"accuracy {cand_acc:.4f} is worse than the active v{active.version} ({active_acc:.4f}) "
                f"by more than {gate.tolerance}"
            )
    verdict["passed"] = not verdict["reasons"]
    return verdict


def reward_model_promote(
    *,
    reward_model: RewardModel,
    user=None,
    gate: PromotionGate | None = None,
    force: bool = False,
    reason: str = "",
) -> Promotion:
    """Make ``reward_model`` the active one for its project if it passes the gate.

    ``force=True`` overrides a failed gate; it needs a ``reason`` and is recorded as a forced promotion.
    Raises ``PromotionRefused`` when the gate fails and ``force`` is off."""
    if force and not reason.strip():
        raise ValidationError({"reason": "a forced promotion needs a reason"})
    verdict = promotion_gate_check(candidate=reward_model, gate=gate)
    if not verdict["passed"] and not force:
        raise PromotionRefused("; ".join(verdict["reasons"]), verdict)
    with transaction.atomic():
        locked = list(RewardModel.objects.select_for_update().filter(project=reward_model.project))
        previous = next((m for m in locked if m.is_active), None)
        RewardModel.objects.filter(project=reward_model.project, is_active=True).update(is_active=False)
        RewardModel.objects.filter(pk=reward_model.pk).update(is_active=True)
        reward_model.is_active = True
        if reward_model.project.serving_order != ServingOrder.QUEUE:
            # The new model re-scores the open tasks (after commit) for uncertainty-first serving.
            from training.rewardmodels.task_scoring import task_scoring_start

            task_scoring_start(project=reward_model.project, user=user if getattr(user, "pk", None) else None)
        return Promotion.objects.create(
            project=reward_model.project,
            reward_model=reward_model,
            previous=previous if previous and previous.pk != reward_model.pk else None,
            promoted_by=user if user is not None and user.is_authenticated else None,
            forced=force and not verdict["passed"],
            reason=reason,
            gate=verdict,
        )
