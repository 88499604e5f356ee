"""Length debiasing: the correlation penalty against hand-computed values, the thin TRL subclass adds exactly
that penalty to TRL's own loss, and a tiny debiased run completes through the job runner."""

from __future__ import annotations

import math

import pytest
import torch

from tests.training.runs.conftest import TINY_CONFIG
from training import jobs
from training.models import JobStatus, ModelEvaluation, RewardModel, RunMetric
from training.rewardmodels.length_debias import length_correlation, length_penalized_loss
from training.rewardmodels.services import reward_run_create

# r = [1, 3 | 2, 2], len = [1, 2 | 3, 2]: deviations r [-1, 1, 0, 0], len [-1, 0, 1, 0];
# cov = 1/4, var_r = var_len = 1/2, so corr = 0.25 / sqrt(0.25) = 0.5.
R_CHOSEN, R_REJECTED = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])
LEN_CHOSEN, LEN_REJECTED = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.0])
# Bradley-Terry: mean(-log sigmoid(1 - 2), -log sigmoid(3 - 2)) = (log(1 + e) + log(1 + 1/e)) / 2
BT = (math.log(1 + math.e) + math.log(1 + 1 / math.e)) / 2


def test_length_correlation_by_hand():
    rewards, lengths = torch.cat([R_CHOSEN, R_REJECTED]), torch.cat([LEN_CHOSEN, LEN_REJECTED])
    assert length_correlation(rewards, lengths).item() == pytest.approx(0.5, abs=1e-6)
    assert length_correlation(rewards, -lengths).item() == pytest.approx(-0.5, abs=1e-6)
    assert length_correlation(
        torch.tensor([1.0, 2, 3]), torch.tensor([10.0, 20, 30])
    ).item() == pytest.approx(1.0, abs=1e-6)
    # constant rewards: no correlation, and a finite gradient
    flat = torch.zeros(4, requires_grad=True)
    corr = length_correlation(flat, lengths)
    corr.backward()
    assert corr.item() == 0.0 and torch.isfinite(flat.grad).all()


def test_penalized_loss_by_hand_and_its_gradient_lowers_the_correlation():
    pair_loss = torch.tensor(BT)
    loss, corr = length_penalized_loss(pair_loss, R_CHOSEN, R_REJECTED, LEN_CHOSEN, LEN_REJECTED, 2.0)
    assert corr.item() == pytest.approx(0.5, abs=1e-6)
    assert loss.item() == pytest.approx(BT + 2.0 * 0.5, abs=1e-6)  # 1.8132617
    # a negative correlation is penalised as much as a positive one
    loss_neg, _ = length_penalized_loss(pair_loss, R_CHOSEN, R_REJECTED, -LEN_CHOSEN, -LEN_REJECTED, 2.0)
    assert loss_neg.item() == pytest.approx(loss.item(), abs=1e-6)
    assert length_penalized_loss(pair_loss, R_CHOSEN, R_REJECTED, LEN_CHOSEN, LEN_REJECTED, 0.0)[
        0
    ].item() == pytest.approx(BT)
    # one gradient step on the rewards, penalty only: |corr| goes down
    chosen, rejected = R_CHOSEN.clone().requires_grad_(), R_REJECTED.clone().requires_grad_()
    loss, _ = length_penalized_loss(torch.tensor(0.0), chosen, rejected, LEN_CHOSEN, LEN_REJECTED, 1.0)
    loss.backward()
    with torch.no_grad():
        stepped = torch.cat([chosen - 0.5 * chosen.grad, rejected - 0.5 * rejected.grad])
    assert abs(length_correlation(stepped, torch.cat([LEN_CHOSEN, LEN_REJECTED])).item()) < 0.5


def test_the_trainer_adds_the_penalty_to_trls_own_loss(tiny_reward_model_dir, tmp_path):
    """The subclass changes only the loss: TRL's loss on the same batch + weight * |corr| of its rewards."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardTrainer

    from training.rewardmodels.length_debias import add_length_columns, debiased_trainer
    from training.rewardmodels.trainer import RewardRunConfig, build_reward_config
    from training.rm_encoding import PairEncoder, tokenize_pairs

    tokenizer = AutoTokenizer.from_pretrained(tiny_reward_model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_reward_model_dir, num_labels=1)
    rows = [
        {"prompt": "Hi ", "chosen": "hello there, how are you today", "rejected": "no"},
        {"prompt": "Help ", "chosen": "sure", "rejected": "go away and never come back here"},
        {"prompt": "Joke ", "chosen": "a long and funny joke about cats", "rejected": "meh"},
    ]
    cols, _ = tokenize_pairs(rows, PairEncoder(tokenizer, max_length=64), use_margin=False)
    add_length_columns(cols, rows)
    cols.pop("kept_index")
    assert cols["chosen_length"] == [30.0, 4.0, 32.0] and cols["rejected_length"] == [2.0, 32.0, 3.0]
    args = build_reward_config(RewardRunConfig(max_length=64), output_dir=str(tmp_path), seed=0)
    kwargs = {
        "model": model,
        "args": args,
        "train_dataset": Dataset.from_dict(cols),
        "processing_class": tokenizer,
    }
    debiased = debiased_trainer(length_penalty=2.0, **kwargs)
    plain = RewardTrainer(**kwargs)
    examples = [debiased.train_dataset[i] for i in range(3)]
    batch = debiased.data_collator(examples)
    assert batch["lengths"].tolist() == [30.0, 4.0, 32.0, 2.0, 32.0, 3.0]
    model.eval()
    with torch.no_grad():
        got = debiased.compute_loss(model, dict(batch))
        lengths = batch.pop("lengths")
        trl_loss, outputs = plain.compute_loss(model, dict(batch), return_outputs=True)
    rewards = outputs.logits.squeeze(-1)
    expected = trl_loss + 2.0 * length_correlation(rewards, lengths).abs()
    assert got.item() == pytest.approx(expected.item(), abs=1e-6)
    assert got.item() > trl_loss.item()


@pytest.mark.django_db
def test_a_tiny_debiased_run_completes_and_logs_the_batch_correlation(tiny_snapshot, tiny_reward_model_dir):
    config = {**TINY_CONFIG, "length_penalty": 1.0}
    run = reward_run_create(
        snapshot=tiny_snapshot, base_model=str(tiny_reward_model_dir), config=config, enqueue=False
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, (run.status_reason, run.log_tail)
    assert run.config["length_penalty"] == 1.0 and run.step == 4
    logged = [
        m.values for m in RunMetric.objects.filter(run=run, values__has_key="loss")
    ]  # not validation rows
    assert all("length_correlation" in v and -1.0 <= v["length_correlation"] <= 1.0 for v in logged)
    rm = RewardModel.objects.get(run=run)
    assert rm.card["params"]["length_penalty"] == 1.0
    metrics = ModelEvaluation.objects.get(reward_model=rm).metrics
    assert metrics["n"] == 12 and metrics["length_correlation"] is not None


@pytest.mark.django_db
@pytest.mark.parametrize("config", [{"length_penalty": -0.5}, {"length_penalty": "x"}])
def test_a_negative_or_mistyped_length_penalty_is_refused(tiny_snapshot, config):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as info:
        reward_run_create(snapshot=tiny_snapshot, base_model="tiny", config=config, enqueue=False)
    assert "config.length_penalty" in str(info.value.message_dict)


# --- length offset (a fixed length term in the training logit) -----------------------------------------------


def test_length_offset_fit_solves_the_one_parameter_bradley_terry():
    from training.rewardmodels.length_debias import LENGTH_OFFSET_CAP, length_offset_fit

    # d = [+1, -1, -1]: maximise log s(w) + 2 log s(-w); d/dw = s(-w) - 2 s(w) = 0 -> s(w) = 1/3, w = -ln 2.
    assert length_offset_fit([1.0, -1.0, -1.0]) == pytest.approx(-math.log(2), abs=1e-9)
    # balanced: length explains nothing
    assert length_offset_fit([0.5, -0.5, 2.0, -2.0]) == pytest.approx(0.0, abs=1e-12)
    # no length difference at all, or all one way (no finite maximum): 0 and the cap
    assert length_offset_fit([0.0, 0.0]) == 0.0
    assert length_offset_fit([]) == 0.0
    assert length_offset_fit([-1.0, -2.0]) == -LENGTH_OFFSET_CAP


def test_add_length_offset_folds_the_term_into_trls_margin_column():
    from training.rewardmodels.length_debias import add_length_offset

    rows = [
        {"chosen": "a" * 9, "rejected": "b" * 99},  # shorter chosen
        {"chosen": "c" * 99, "rejected": "d" * 9},
        {"chosen": "e" * 9, "rejected": "f" * 99},
        {"chosen": "skipped (not kept)", "rejected": ""},
    ]
    d = math.log(10) - math.log(100)  # log1p(9) - log1p(99)
    cols = {"kept_index": [0, 1, 2], "chosen_ids": [[1], [2], [3]], "rejected_ids": [[4], [5], [6]]}
    w = add_length_offset(cols, rows)
    # shorter wins 2 of 3: w * |d| = ln 2, negative (length counts against a response)
    assert w == pytest.approx(-math.log(2) / abs(d), rel=1e-9)
    assert cols["margin"] == pytest.approx([-w * d, w * d, -w * d])
    # an existing margin column is kept and shifted
    cols = {"kept_index": [0, 1, 2], "margin": [1.0, 0.0, 2.0]}
    w = add_length_offset(cols, rows)
    assert cols["margin"] == pytest.approx([1.0 - w * d, w * d, 2.0 - w * d])


@pytest.mark.django_db
def test_a_tiny_length_offset_run_completes_and_records_its_weight(tiny_snapshot, tiny_reward_model_dir):
    run = reward_run_create(
        snapshot=tiny_snapshot,
        base_model=str(tiny_reward_model_dir),
        config={**TINY_CONFIG, "length_offset": True},
        enqueue=False,
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, (run.status_reason, run.log_tail)
    rm = RewardModel.objects.get(run=run)
    assert rm.card["params"]["length_offset"] is True
    weight = run.summary["data"]["train"]["length_offset_weight"]
    assert isinstance(weight, float) and abs(weight) <= 10
    assert ModelEvaluation.objects.get(reward_model=rm).metrics["n"] == 12
