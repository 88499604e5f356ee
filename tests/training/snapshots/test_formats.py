"""Every snapshot format loads with its consumer and no glue: `datasets` (json, parquet, load_from_disk)
and TRL's RewardTrainer training a tiny reward model for a few steps from the TRL JSONL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.snapshots.test_build import build
from training.datasets.selectors import snapshot_split_path


@pytest.fixture
def ready_snapshot(engineer, judged_project):
    # per_vote with strength margins: 36 rows, every split non-empty (prompts 6/3/3).
    snap = build(
        engineer,
        judged_project,
        combine="per_vote",
        margin="strength",
        split={"train": 0.5, "validation": 0.25, "test": 0.25},
    )
    assert snap.status == "succeeded", snap.error
    return snap


@pytest.mark.django_db
def test_each_format_loads_with_datasets(ready_snapshot, tmp_path):
    from datasets import load_dataset, load_from_disk
    from trl.data_utils import is_conversational

    cache = str(tmp_path / "hf-cache")
    root = Path(ready_snapshot.artifact_dir)
    files = {s: str(snapshot_split_path(ready_snapshot, s)) for s in ("train", "validation", "test")}
    trl = load_dataset("json", data_files=files, cache_dir=cache)
    assert trl["train"].column_names == ["prompt", "chosen", "rejected", "margin"]
    assert trl.num_rows == ready_snapshot.counts["rows"]
    assert not is_conversational(trl["train"][0])
    conv = load_dataset(
        "json",
        data_files={s: str(snapshot_split_path(ready_snapshot, s, "conversational")) for s in files},
        cache_dir=cache,
    )
    assert is_conversational(conv["train"][0])
    assert conv["train"][0]["chosen"][0]["role"] == "assistant"
    parquet = load_dataset(
        "parquet", data_files={s: str(root / "parquet" / f"{s}.parquet") for s in files}, cache_dir=cache
    )
    assert parquet["test"]["chosen"] == trl["test"]["chosen"]
    assert "judgment_ids" in parquet["train"].column_names
    hf = load_from_disk(str(root / "hf"))
    assert hf.num_rows == ready_snapshot.counts["rows"]
    assert hf["validation"]["prompt"] == trl["validation"]["prompt"]
    meta = load_dataset("json", data_files=str(root / "meta" / "train.jsonl"), cache_dir=cache)["train"]
    assert meta.num_rows == trl["train"].num_rows
    votes = load_dataset("json", data_files=str(root / "votes.jsonl"), cache_dir=cache)["train"]
    assert votes.num_rows == 36 and "annotator" in votes.column_names


@pytest.mark.slow
@pytest.mark.django_db
def test_trl_reward_trainer_runs_from_the_jsonl(ready_snapshot, tiny_reward_model_dir, tmp_path):
    import torch
    from datasets import load_dataset
    from trl import RewardConfig, RewardTrainer

    torch.set_num_threads(1)
    train = load_dataset(
        "json", data_files=str(snapshot_split_path(ready_snapshot, "train")), cache_dir=str(tmp_path / "c")
    )["train"]
    args = RewardConfig(
        output_dir=str(tmp_path / "rm"),
        max_steps=3,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        max_length=64,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
    )
    trainer = RewardTrainer(model=str(tiny_reward_model_dir), args=args, train_dataset=train)
    result = trainer.train()
    assert result.global_step == 3
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
