"""Registry: versions, the promotion gate (minimum accuracy, tolerance against the active model on the same
test split), forced overrides recorded, evaluation of any registered model on any snapshot."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tests.factories import make_user
from tests.training.runs.snapshot_files import synthetic_pairs, write_snapshot
from training.models import ModelEvaluation, Promotion, RewardModel
from training.rewardmodels.registry import (
    PromotionGate,
    PromotionRefused,
    reward_model_evaluate,
    reward_model_promote,
)
from training.rewardmodels.selectors import reward_model_active

pytestmark = pytest.mark.django_db


def _rm(project, snapshot, version, artifact_dir, accuracy=None, active=False):
    rm = RewardModel.objects.create(
        project=project,
        version=version,
        snapshot=snapshot,
        base_model="tiny",
        artifact_dir=str(artifact_dir),
        max_length=64,
        is_active=active,
    )
    if accuracy is not None:
        ModelEvaluation.objects.create(
            reward_model=rm, snapshot=snapshot, split="test", metrics={"accuracy": accuracy}
        )
    return rm


def test_gate_compares_with_active_model_on_the_same_split(project, tiny_snapshot, tiny_reward_model_dir):
    active = _rm(project, tiny_snapshot, 1, tiny_reward_model_dir, accuracy=0.80, active=True)
    candidate = _rm(project, tiny_snapshot, 2, tiny_reward_model_dir, accuracy=0.75)
    with pytest.raises(PromotionRefused) as refused:
        reward_model_promote(reward_model=candidate, gate=PromotionGate(min_accuracy=0.6, tolerance=0.01))
    assert refused.value.gate["active_accuracy"] == 0.80 and not refused.value.gate["passed"]
    assert "worse than the active v1" in str(refused.value)
    assert reward_model_active(project) == active and not Promotion.objects.exists()

    promotion = reward_model_promote(
        reward_model=candidate, gate=PromotionGate(min_accuracy=0.6, tolerance=0.1)
    )
    assert reward_model_active(project) == candidate
    assert promotion.previous == active and not promotion.forced and promotion.gate["passed"]


def test_minimum_accuracy_and_forced_override_is_recorded(project, tiny_snapshot, tiny_reward_model_dir):
    candidate = _rm(project, tiny_snapshot, 1, tiny_reward_model_dir, accuracy=0.5)
    with pytest.raises(PromotionRefused, match="below the minimum"):
        reward_model_promote(reward_model=candidate, gate=PromotionGate(min_accuracy=0.55))
    with pytest.raises(ValidationError, match="needs a reason"):
        reward_model_promote(reward_model=candidate, force=True)
    user = make_user("engineer")
    promotion = reward_model_promote(reward_model=candidate, force=True, reason="hotfix: data bug", user=user)
    assert promotion.forced and promotion.reason == "hotfix: data bug" and promotion.promoted_by == user
    assert promotion.gate["passed"] is False and promotion.gate["candidate_accuracy"] == 0.5
    assert reward_model_active(project) == candidate


def test_active_model_is_evaluated_on_the_candidate_snapshot_when_missing(
    project, tiny_snapshot, tiny_reward_model_dir
):
    other = write_snapshot(
        project, {"train": synthetic_pairs(4), "test": synthetic_pairs(6, seed=9)}, name="other"
    )
    active = _rm(project, other, 1, tiny_reward_model_dir, accuracy=0.9, active=True)
    candidate = _rm(project, tiny_snapshot, 2, tiny_reward_model_dir, accuracy=1.0)
    reward_model_promote(reward_model=candidate, gate=PromotionGate(min_accuracy=0.0, tolerance=1.0))
    new_eval = ModelEvaluation.objects.get(reward_model=active, snapshot=tiny_snapshot)
    assert new_eval.metrics["n"] == 12  # the candidate's test split, scored with the real model
    assert 0.0 <= new_eval.metrics["accuracy"] <= 1.0


def test_evaluate_any_model_on_any_snapshot(project, tiny_snapshot, tiny_reward_model_dir):
    rm = _rm(project, tiny_snapshot, 1, tiny_reward_model_dir)
    other = write_snapshot(
        project, {"train": synthetic_pairs(4), "test": synthetic_pairs(6, seed=9)}, name="other"
    )
    evaluation = reward_model_evaluate(reward_model=rm, snapshot=other)
    assert evaluation.snapshot == other and evaluation.metrics["n"] == 6
    assert evaluation.metrics["reward_std"] is not None
    with pytest.raises(ValidationError):
        reward_model_evaluate(reward_model=rm, snapshot=other, split="validation")
