"""A reward model's normalisation statistics (the card's reward_mean / reward_std) come from the train
split, never the held-out test split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.factories import make_project
from tests.training.runs.snapshot_files import pref_and_both_bad_rows


@pytest.mark.django_db
def test_reward_card_statistics_come_from_the_train_split(tiny_reward_model_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tests.training.runs.conftest import TINY_CONFIG
    from tests.training.runs.snapshot_files import synthetic_pairs, write_snapshot
    from training import jobs
    from training.datasets.reader import read_snapshot_split
    from training.models import JobStatus, ModelEvaluation, RewardModel
    from training.rewardmodels.services import reward_run_create
    from training.rm_encoding import score_split

    train_rows, train_meta = synthetic_pairs(16, seed=1)
    neutral_rows, neutral_meta = pref_and_both_bad_rows()
    train = (train_rows + neutral_rows[1:], train_meta + neutral_meta[1:])  # 16 prefs + 1 both_bad
    test = (
        [{**r, "prompt": "Something else entirely. "} for r in synthetic_pairs(8)[0]],
        synthetic_pairs(8)[1],
    )
    snapshot = write_snapshot(make_project(), {"train": train, "test": test})
    run = reward_run_create(
        snapshot=snapshot, base_model=str(tiny_reward_model_dir), config=TINY_CONFIG, enqueue=False
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, (run.status_reason, run.log_tail)
    # The both_bad row is left out of the Bradley-Terry loss: 16 preference pairs, 4 steps of 4.
    assert run.summary["data"]["train"]["pairs"] == 16
    assert run.summary["data"]["train"]["neutral_dropped"] == 1 and run.step == 4

    rm = RewardModel.objects.get(run=run)
    model = AutoModelForSequenceClassification.from_pretrained(rm.artifact_dir)
    tokenizer = AutoTokenizer.from_pretrained(rm.artifact_dir)

    def split_scores(split: str) -> list[float]:
        rows, meta = read_snapshot_split(snapshot.artifact_dir, split)
        r_c, r_r, *_ = score_split(model, tokenizer, rows, meta, max_length=TINY_CONFIG["max_length"])
        return [*r_c, *r_r]

    train_scores, test_scores = split_scores("train"), split_scores("test")
    assert len(train_scores) == 34
    assert abs(float(np.mean(train_scores)) - float(np.mean(test_scores))) > 1e-4  # the splits differ
    assert rm.reward_mean == pytest.approx(float(np.mean(train_scores)), rel=1e-4, abs=1e-5)
    assert rm.reward_std == pytest.approx(float(np.std(train_scores)), rel=1e-4, abs=1e-5)
    card = json.loads((Path(rm.artifact_dir) / "preflab_card.json").read_text())
    assert card["reward_mean"] == rm.reward_mean and card["reward_stats"] == {"split": "train", "pairs": 17}
    # The evaluation itself is still on the test split.
    evaluation = ModelEvaluation.objects.get(reward_model=rm)
    assert evaluation.split == "test" and evaluation.metrics["n"] == 8
    assert evaluation.metrics["reward_mean"] == pytest.approx(float(np.mean(test_scores)), rel=1e-4, abs=1e-5)
