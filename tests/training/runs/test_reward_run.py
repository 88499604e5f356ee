"""A tiny reward-model run executed in-process: metrics in the DB, artifact on disk, registry row, card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.runs.conftest import TINY_CONFIG
from training import jobs
from training.models import JobStatus, ModelEvaluation, RewardModel, RunMetric
from training.rewardmodels.services import reward_run_create

pytestmark = pytest.mark.django_db


def test_tiny_reward_run_trains_evaluates_and_registers(tiny_snapshot, tiny_reward_model_dir):
    run = reward_run_create(
        snapshot=tiny_snapshot, base_model=str(tiny_reward_model_dir), config=TINY_CONFIG, enqueue=False
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, (run.status_reason, run.log_tail)
    assert run.total_steps == 4 and run.step == 4  # 16 pairs / batch 4, one epoch
    metrics = list(RunMetric.objects.filter(run=run))
    assert {"loss", "accuracy", "margin", "learning_rate"} <= set(metrics[0].values)
    # 1 in 5 train prompts is long: left-truncated, not dropped
    # (neutral_dropped: tie / both-bad rows left out of the Bradley-Terry loss; this snapshot has none)
    assert run.summary["data"]["train"] == {
        "pairs": 16,
        "kept": 12,
        "truncated": 4,
        "dropped": 0,
        "neutral_dropped": 0,
    }
    assert "prompt-truncated 4" in run.log_tail

    rm = RewardModel.objects.get(run=run)
    assert rm.version == 1 and rm.project == tiny_snapshot.projects.get() and not rm.is_active
    art = Path(rm.artifact_dir)
    assert (art / "config.json").exists() and (art / "model.safetensors").exists()
    assert (art / "tokenizer.json").exists()
    assert not list(art.parent.glob(".*tmp*"))  # the temp dir was renamed, nothing left behind
    card = json.loads((art / "preflab_card.json").read_text())
    for key in ("reward_mean", "reward_std", "max_length", "base_model", "snapshot_hash", "version"):
        assert key in card
    assert card["snapshot_hash"] == tiny_snapshot.content_hash and card["version"] == 1
    assert rm.reward_std is not None and rm.reward_std >= 0

    evaluation = ModelEvaluation.objects.get(reward_model=rm)
    assert evaluation.split == "test" and evaluation.metrics["n"] == 12
    assert 0.0 <= evaluation.metrics["accuracy"] <= 1.0
    assert len(evaluation.metrics["reliability"]) == 10
    assert set(evaluation.metrics["by_source"]) == {"model-a vs model-c", "model-b vs model-c"}

    from transformers import AutoModelForSequenceClassification

    loaded = AutoModelForSequenceClassification.from_pretrained(art)
    assert loaded.config.num_labels == 1


def test_tiny_lora_run_saves_a_merged_plain_model_that_scores(tiny_snapshot, tiny_reward_model_dir):
    """use_lora trains adapters only (peft) and merges them before saving: the artifact is an ordinary
    sequence-classification model, no adapter files, the base weights moved by the merged LoRA delta."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.rm_encoding import score_sequences

    config = {**TINY_CONFIG, "use_lora": True, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
    run = reward_run_create(
        snapshot=tiny_snapshot, base_model=str(tiny_reward_model_dir), config=config, enqueue=False
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, (run.status_reason, run.log_tail)
    assert run.config["use_lora"] is True and run.step == 4

    rm = RewardModel.objects.get(run=run)
    art = Path(rm.artifact_dir)
    assert (art / "model.safetensors").exists()
    assert not (art / "adapter_config.json").exists() and not (art / "adapter_model.safetensors").exists()
    merged, info = AutoModelForSequenceClassification.from_pretrained(art, output_loading_info=True)
    assert not any(info.values()), info  # no missing / unexpected / mismatched weights
    assert type(merged).__name__ == "LlamaForSequenceClassification" and merged.config.num_labels == 1
    assert not [name for name in merged.state_dict() if "lora_" in name or "base_layer" in name]

    base = AutoModelForSequenceClassification.from_pretrained(tiny_reward_model_dir)
    merged_weights, base_weights = merged.state_dict(), base.state_dict()
    changed = {n for n in base_weights if not torch.equal(merged_weights[n], base_weights[n])}
    assert any("q_proj" in n for n in changed) and any("v_proj" in n for n in changed)  # merged LoRA
    assert not any("mlp" in n or "embed_tokens" in n for n in changed)  # frozen: no adapter there

    tokenizer = AutoTokenizer.from_pretrained(art)
    texts = ["Prompt: say hi\nAnswer: hello there, friend", "Prompt: say hi\nAnswer: no"]
    rewards = score_sequences(merged, [tokenizer(t)["input_ids"] for t in texts], pad_token_id=0)
    assert len(rewards) == 2 and all(torch.isfinite(torch.tensor(rewards)))
    evaluation = ModelEvaluation.objects.get(reward_model=rm)  # the run scored its test split with it
    assert evaluation.metrics["n"] == 12 and 0.0 <= evaluation.metrics["accuracy"] <= 1.0
