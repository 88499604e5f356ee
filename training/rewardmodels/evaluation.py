"""Evaluate a reward model and describe it: the report on a snapshot split, the normalisation statistics
(measured on the train split) and the model card written beside the weights.

One step for every path that produces or re-checks a reward model: the Celery executor
(``training.rewardmodels.trainer``), ``python -m training.rewardmodels.launch`` under ``accelerate launch``, and the
registry's re-evaluation before a promotion.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.datasets.reader import read_snapshot_split
from training.evaluation import evaluate_pairs, reward_statistics
from training.rm_encoding import score_split

CARD_NAME = "preflab_card.json"
# Normalisation statistics (the card's reward_mean / reward_std) are measured on at most this many train pairs
# (1,000 rewards: the mean is known to about 3 % of a std; more would lengthen every run for little).
TRAIN_STATS_MAX_PAIRS = 500
#: The evaluation split, and where tiny snapshots without one fall back to (in order).
EVAL_SPLITS = ("test", "validation", "train")
#: The headline metrics copied onto the card.
CARD_METRICS = ("accuracy", "mean_margin", "ece", "length_correlation", "n")


def evaluate_split(
    model, tokenizer, rows: list[dict], meta: list[dict], *, max_length: int, batch_size: int = 16
) -> dict[str, Any]:
    """The evaluation report (``training.evaluation.evaluate_pairs``) of a model on a split's rows, with
    the split's encoding report under ``data`` (pairs kept, truncated, dropped)."""
    r_c, r_r, kept_rows, kept_meta, report = score_split(
        model, tokenizer, rows, meta, max_length=max_length, batch_size=batch_size
    )
    metrics = evaluate_pairs(r_c, r_r, kept_rows, kept_meta)
    metrics["data"] = report
    return metrics


def train_reward_stats(
    model,
    tokenizer,
    artifact_dir: str | Path,
    *,
    max_length: int,
    batch_size: int = 16,
    seed: int = 0,
    max_pairs: int = TRAIN_STATS_MAX_PAIRS,
) -> dict[str, Any]:
    """Normalisation statistics of a reward model: mean and std of its rewards on the train split's chosen
    and rejected responses (a seeded sample of at most ``max_pairs`` pairs), scored as ``score_split`` does.

    Returns {"reward_mean", "reward_std", "pairs"} (None statistics when no train pair could be scored).
    The reward server normalises with these, so they must not come from the held-out test split.
    """
    rows, meta = read_snapshot_split(artifact_dir, "train")
    if len(rows) > max_pairs:
        pick = sorted(random.Random(seed).sample(range(len(rows)), max_pairs))
        rows, meta = [rows[i] for i in pick], [meta[i] for i in pick]
    r_c, r_r, *_ = score_split(model, tokenizer, rows, meta, max_length=max_length, batch_size=batch_size)
    mean, std = reward_statistics([*r_c, *r_r])
    return {"reward_mean": mean, "reward_std": std, "pairs": len(r_c)}


@dataclass
class RewardModelCard:
    """``preflab_card.json``: what the reward server and the registry read beside the weights."""

    base_model: str
    snapshot_hash: str
    max_length: int
    """Longest input the model was trained on; the server cuts inputs to it."""
    params: dict[str, Any]
    """The run config (``RewardRunConfig.to_dict()``)."""
    seed: int
    reward_mean: float | None
    """Normalisation statistics from the train split (what the reward server divides by)."""
    reward_std: float | None
    reward_stats: dict[str, Any]
    metrics: dict[str, Any]
    """Headline metrics on ``eval_split``."""
    eval_split: str
    data: dict[str, Any]
    """Per-split encoding reports of training (pairs kept, truncated, dropped)."""
    snapshot_id: int | None = None
    run_id: int | None = None
    messages_format: str = "text"
    """Trained on snapshot prompt text: the reward server renders chat messages the same way."""
    encoding: dict[str, Any] | None = None
    """How training encoded its inputs (``training.rm_encoding.encoding_record``: layout, prompt rendering,
    max length, truncation, padding side, pad token); the reward server encodes as it says."""
    version: int | None = None
    """Set by the registry when the model is registered."""
    ensemble: dict[str, Any] | None = None
    """An ensemble's members: {"size", "resample", "members": [{"dir", "seed", "steps"}]} (the loader,
    ``training.rm_ensemble``, reads the member directories from here); None for a single model."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, directory: str | Path) -> None:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        (Path(directory) / CARD_NAME).write_text(text, encoding="utf-8")


@dataclass
class RewardModelReport:
    """The outcome of ``evaluate_and_describe``: the card and the full evaluation report of ``split``."""

    card: RewardModelCard
    metrics: dict[str, Any]
    split: str


def evaluate_and_describe(
    model,
    tokenizer,
    *,
    snapshot_dir: str | Path,
    params: dict[str, Any],
    max_length: int,
    batch_size: int,
    seed: int,
    base_model: str,
    snapshot_hash: str,
    data: dict[str, Any],
    snapshot_id: int | None = None,
    run_id: int | None = None,
    reporter=None,
    encoding: dict[str, Any] | None = None,
) -> RewardModelReport:
    """Evaluate a freshly trained model on its snapshot's test split (tiny snapshots: validation, then
    train, and say so), measure its normalisation statistics on the train split and build its card.
    ``reporter`` (a ``training.jobs.RunReporter``, optional) gets the log lines and heartbeats."""
    split, rows, meta = EVAL_SPLITS[0], [], []
    for split in EVAL_SPLITS:
        rows, meta = read_snapshot_split(snapshot_dir, split)
        if rows:
            break
    if reporter and split != EVAL_SPLITS[0]:
        reporter.log(f"test split is empty; evaluating on {split}")
    metrics = evaluate_split(model, tokenizer, rows, meta, max_length=max_length, batch_size=batch_size)
    if reporter:
        reporter.heartbeat()
    stats = train_reward_stats(
        model, tokenizer, snapshot_dir, max_length=max_length, batch_size=batch_size, seed=seed
    )
    card = RewardModelCard(
        base_model=base_model,
        snapshot_hash=snapshot_hash,
        max_length=max_length,
        params=params,
        seed=seed,
        reward_mean=stats["reward_mean"],
        reward_std=stats["reward_std"],
        reward_stats={"split": "train", "pairs": stats["pairs"]},
        metrics={k: metrics.get(k) for k in CARD_METRICS},
        eval_split=split,
        data=data,
        snapshot_id=snapshot_id,
        run_id=run_id,
        encoding=encoding,
    )
    return RewardModelReport(card=card, metrics=metrics, split=split)
