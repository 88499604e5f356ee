"""The validation split during reward-model training: evaluation rows beside the train rows, the best
checkpoint kept (the saved model's validation loss is the best one evaluated, not the last), early stopping
on a plateau, typed config refused at creation, and activation checkpointing only where it pays."""

from __future__ import annotations

import math

import pytest
from django.core.exceptions import ValidationError

from tests.training.runs.conftest import TINY_CONFIG
from training import jobs
from training.models import JobStatus, RewardModel, RunMetric, TrainingRun
from training.rewardmodels.services import reward_run_create
from training.trl_runs import LARGE_MODEL_PARAMETERS, activation_checkpointing_for


def _run(snapshot, model_dir, **config):
    run = reward_run_create(
        snapshot=snapshot, base_model=str(model_dir), config={**TINY_CONFIG, **config}, enqueue=False
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, (run.status_reason, run.log_tail)
    return run


def _validation_loss(model_dir, snapshot, max_length: int) -> float:
    """Mean -log sigmoid(r_chosen - r_rejected) of a saved model on the snapshot's validation pairs."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.datasets.reader import read_snapshot_split
    from training.rm_encoding import PairEncoder, score_sequences

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    encoder = PairEncoder(tokenizer, max_length=max_length)
    rows, _ = read_snapshot_split(snapshot.artifact_dir, "validation")
    pairs = [encoder.encode_pair(r["prompt"], r["chosen"], r["rejected"]) for r in rows]
    chosen = score_sequences(model, [c for c, _, _ in pairs], pad_token_id=tokenizer.pad_token_id)
    rejected = score_sequences(model, [r for _, r, _ in pairs], pad_token_id=tokenizer.pad_token_id)
    return sum(math.log1p(math.exp(-(c - r))) for c, r in zip(chosen, rejected, strict=True)) / len(pairs)


@pytest.mark.django_db
def test_evaluation_rows_are_recorded_and_the_best_checkpoint_is_kept(tiny_snapshot, tiny_reward_model_dir):
    run = _run(
        tiny_snapshot,
        tiny_reward_model_dir,
        learning_rate=3e-3,
        num_train_epochs=2,
        eval_strategy="steps",
        eval_steps=1,
        metric_for_best_model="loss",
        use_margin=False,
    )
    evals = [(m.step, m.values) for m in RunMetric.objects.filter(run=run).order_by("step", "pk")]
    evals = [(step, v) for step, v in evals if "eval_loss" in v]
    assert [step for step, _ in evals] == list(range(1, 9))  # 16 pairs / batch 4 = 4 steps, two epochs
    assert {"eval_loss", "eval_accuracy", "eval_margin"} <= set(evals[0][1])
    selection = run.summary["selection"]
    losses = {step: v["eval_loss"] for step, v in evals}
    best_step = min(losses, key=lambda s: (losses[s], s))  # ties keep the earlier step
    assert selection["evaluations"] == 8 and selection["kept"] == "best" and not selection["stopped_early"]
    assert selection["kept_step"] == best_step and selection["metric"] == "eval_loss"
    assert selection["best_value"] == pytest.approx(losses[best_step])
    assert f"kept step {best_step}" in run.log_tail
    assert run.summary["data"]["validation"]["pairs"] == 4
    rm = RewardModel.objects.get(run=run)
    # The saved weights are the kept step's: their validation loss is the best one evaluated.
    assert _validation_loss(rm.artifact_dir, tiny_snapshot, 64) == pytest.approx(losses[best_step], abs=1e-4)


@pytest.mark.django_db
def test_early_stopping_ends_a_plateaued_run_before_max_steps(tiny_snapshot, tiny_reward_model_dir):
    # learning rate 0: the validation accuracy never improves after the first evaluation.
    run = _run(
        tiny_snapshot,
        tiny_reward_model_dir,
        learning_rate=0.0,
        max_steps=12,
        eval_strategy="steps",
        eval_steps=1,
        early_stopping_patience=2,
    )
    selection = run.summary["selection"]
    assert run.step == run.total_steps == 3 and run.summary["steps"] == 3  # best at 1, not better at 2, 3
    assert selection["stopped_early"] and selection["max_steps"] == 12 and selection["evaluations"] == 3
    assert selection["kept_step"] == 1 and "stopped early at step 3" in run.log_tail


@pytest.mark.django_db
def test_without_evaluation_the_last_step_is_kept(tiny_snapshot, tiny_reward_model_dir):
    run = _run(tiny_snapshot, tiny_reward_model_dir, eval_strategy="no")
    assert run.summary["selection"] == {
        "evaluations": 0,
        "metric": None,
        "best_value": None,
        "kept_step": 4,
        "kept": "last",
        "stopped_early": False,
        "max_steps": 4,
    }
    assert not RunMetric.objects.filter(run=run, values__has_key="eval_loss").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"eval_strategy": "often"}, "config.eval_strategy"),
        ({"eval_steps": 0}, "config.eval_steps"),
        ({"early_stopping_patience": 0}, "config.early_stopping_patience"),
        ({"early_stopping_patience": 2, "eval_strategy": "no"}, "config.early_stopping_patience"),
        ({"metric_for_best_model": "f1"}, "config.metric_for_best_model"),
        ({"activation_checkpointing": "yes"}, "config.activation_checkpointing"),
    ],
)
def test_bad_validation_settings_are_refused_at_creation(tiny_snapshot, config, field):
    with pytest.raises(ValidationError) as refused:
        reward_run_create(snapshot=tiny_snapshot, base_model="tiny", config=config, enqueue=False)
    assert field in str(refused.value)
    assert not TrainingRun.objects.exists()


def test_activation_checkpointing_is_on_only_for_large_models_on_gpu():
    small, large = 22_000_000, LARGE_MODEL_PARAMETERS
    assert not activation_checkpointing_for(None, parameters=small, gpu=True)
    assert not activation_checkpointing_for(None, parameters=large, gpu=False)
    assert activation_checkpointing_for(None, parameters=large, gpu=True)
    assert activation_checkpointing_for(True, parameters=small, gpu=False)
    assert not activation_checkpointing_for(False, parameters=large, gpu=True)


def test_the_reward_config_turns_trl_s_default_checkpointing_off_for_a_small_model(tmp_path):
    from training.rewardmodels.trainer import RewardRunConfig, build_reward_config

    args = build_reward_config(RewardRunConfig(), output_dir=str(tmp_path), seed=0, parameters=22_000_000)
    assert args.activation_checkpointing is False and args.gradient_checkpointing is False
    forced = build_reward_config(
        RewardRunConfig(activation_checkpointing=True), output_dir=str(tmp_path), seed=0, parameters=1
    )
    assert forced.activation_checkpointing is True
    evaluating = build_reward_config(RewardRunConfig(), output_dir=str(tmp_path), seed=0, has_validation=True)
    assert evaluating.eval_strategy.value == "epoch" and evaluating.load_best_model_at_end
    assert evaluating.metric_for_best_model == "eval_accuracy" and evaluating.greater_is_better
