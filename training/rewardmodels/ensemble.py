"""Ensemble reward models: k members trained in one run (different seeds, or bootstrap resamples of the
train split as well), saved as one artifact (``members/<i>`` + the shared tokenizer + one card) and
registered as one version; and the evaluation that says whether the ensemble beats its best member.

The artifact layout and the loading live in ``training.rm_ensemble`` (shared with the reward server). Each
member is an ordinary ``train_reward_model`` run; progress and metrics of member i are reported at steps
``i * steps + step`` of ``k * steps``, so the run's bar and curves cover all members in order.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.datasets.reader import read_snapshot_split
from training.evaluation import bootstrap_accuracy, label_type, pair_outcomes, paired_bootstrap_difference
from training.rm_encoding import score_split
from training.rm_ensemble import MEMBERS_DIR, EnsembleRewardModel

#: Bootstrap resamples behind the intervals of the ensemble report.
N_BOOT = 2000


def bootstrap_resample(rows: list[dict], *, seed: int) -> list[dict]:
    """A bootstrap resample of the train pairs: as many rows, drawn with replacement (seeded)."""
    rng = random.Random(seed)
    return [rows[rng.randrange(len(rows))] for _ in rows]


class MemberReporter:
    """A ``RunReporter`` seen by member ``index`` of ``size``: its steps are shifted so that the run's
    progress and metric curves run over all members in turn; log lines name the member."""

    def __init__(self, reporter, *, index: int, size: int) -> None:
        self.reporter, self.index, self.size = reporter, index, size
        self.steps = 0

    def progress(self, step: int, total: int) -> None:
        self.steps = total
        self.reporter.progress(self.index * total + step, self.size * total)

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        self.reporter.log_metrics(self.index * self.steps + step, {**values, "member": float(self.index)})

    def log(self, line: str) -> None:
        self.reporter.log(f"member {self.index + 1}/{self.size}: {line}")

    def __getattr__(self, name: str):  # heartbeat, check_cancel, ...
        return getattr(self.reporter, name)


@dataclass
class TrainedEnsemble:
    """What ``train_ensemble`` hands back; reads like ``TrainedRewardModel`` where the executor uses it."""

    model: EnsembleRewardModel
    tokenizer: Any
    members: list[Any]
    """Each member's ``TrainedRewardModel``."""
    seeds: list[int]
    resample: str
    is_main: bool
    data: dict[str, Any]
    steps: int
    train_seconds: float

    @property
    def encoding(self) -> dict[str, Any]:
        """The card's ``encoding``: the members share the tokenizer and its encoding."""
        return self.members[0].encoding

    def card_entry(self) -> dict[str, Any]:
        """The card's ``ensemble``: how to load the members (``training.rm_ensemble``) and how they differ."""
        return {
            "size": len(self.members),
            "resample": self.resample,
            "members": [
                {"dir": f"{MEMBERS_DIR}/{i}", "seed": seed, "steps": m.steps}
                for i, (seed, m) in enumerate(zip(self.seeds, self.members, strict=True))
            ],
        }

    def summary(self) -> dict[str, Any]:
        pairs = sum(m.pairs_processed for m in self.members)
        return {
            "data": self.data,
            "train": self.members[-1].train_metrics,
            "steps": self.steps,
            "train_seconds": self.train_seconds,
            "pairs_per_second": pairs / self.train_seconds if self.train_seconds else None,
            "world_size": self.members[0].world_size,
            "selection": [m.selection for m in self.members],
            "ensemble": {
                "size": len(self.members),
                "resample": self.resample,
                "seeds": self.seeds,
                "member_train_seconds": [round(m.train_seconds, 2) for m in self.members],
            },
        }


def train_ensemble(
    *,
    train_member: Callable[..., Any],
    base_model: str,
    artifact_dir: str | Path,
    cfg,
    seed: int,
    output_dir: str | Path,
    reporter=None,
    tracking=None,
) -> TrainedEnsemble:
    """Train ``cfg.ensemble_size`` members with ``train_member`` (``trainer.train_reward_model``; seeds
    ``seed + i``; bootstrap resamples of the train pairs too when ``cfg.ensemble_resample == "bootstrap"``)
    into ``output_dir/members/<i>``, the tokenizer at the top."""
    size, out = cfg.ensemble_size, Path(output_dir)
    seeds = [seed + i for i in range(size)]
    members, started = [], time.perf_counter()
    for i, member_seed in enumerate(seeds):
        member_reporter = MemberReporter(reporter, index=i, size=size) if reporter else None
        if member_reporter:
            member_reporter.log(f"training (seed {member_seed}, {cfg.ensemble_resample})")
        members.append(
            train_member(
                base_model=base_model,
                artifact_dir=artifact_dir,
                cfg=cfg,
                seed=member_seed,
                output_dir=out / MEMBERS_DIR / str(i),
                reporter=member_reporter,
                tracking=tracking,
                bootstrap_seed=member_seed if cfg.ensemble_resample == "bootstrap" else None,
            )
        )
    seconds = time.perf_counter() - started
    tokenizer = members[0].tokenizer
    if members[0].is_main:
        tokenizer.save_pretrained(out)
    return TrainedEnsemble(
        model=EnsembleRewardModel([m.model for m in members]),
        tokenizer=tokenizer,
        members=members,
        seeds=seeds,
        resample=cfg.ensemble_resample,
        is_main=members[0].is_main,
        data={"train": members[0].data["train"], "members": [m.data["train"] for m in members]},
        steps=sum(m.steps for m in members),
        train_seconds=seconds,
    )


def ensemble_report(
    ensemble: EnsembleRewardModel,
    tokenizer,
    *,
    snapshot_dir: str | Path,
    split: str,
    max_length: int,
    batch_size: int = 16,
    seed: int = 0,
    n_boot: int = N_BOOT,
) -> dict[str, Any]:
    """Does the ensemble beat its best member on ``split``? Each member and the ensemble (the members' mean)
    are scored on the same preference pairs; accuracies get percentile bootstrap intervals, and the ensemble
    minus the best member a paired bootstrap interval (``training.evaluation.paired_bootstrap_difference``).
    The best member is picked on the same split, which favours the member: an ensemble "better" verdict
    holds against the luckiest member."""
    rows, meta = read_snapshot_split(snapshot_dir, split)
    per_member = []
    for member in ensemble.members:
        r_c, r_r, _, kept_meta, _ = score_split(
            member, tokenizer, rows, meta, max_length=max_length, batch_size=batch_size
        )
        per_member.append((r_c, r_r))
    prefs = np.array([label_type(m) == "pref" for m in kept_meta], dtype=bool)
    chosen = np.array([r_c for r_c, _ in per_member], dtype=float)[:, prefs]  # (members, pairs)
    rejected = np.array([r_r for _, r_r in per_member], dtype=float)[:, prefs]
    member_outcomes = [pair_outcomes(c, r) for c, r in zip(chosen, rejected, strict=True)]
    ensemble_outcomes = pair_outcomes(chosen.mean(axis=0), rejected.mean(axis=0))
    k = len(per_member)
    members = [
        {"index": i, **bootstrap_accuracy(o, n_boot=n_boot, seed=seed)} for i, o in enumerate(member_outcomes)
    ]
    best = max(members, key=lambda m: m["accuracy"] if m["accuracy"] is not None else -1.0)["index"]
    return {
        "size": k,
        "split": split,
        "n_boot": n_boot,
        "ensemble": bootstrap_accuracy(ensemble_outcomes, n_boot=n_boot, seed=seed),
        "members": members,
        "best_member": best,
        "vs_best_member": paired_bootstrap_difference(
            ensemble_outcomes, member_outcomes[best], n_boot=n_boot, seed=seed
        ),
    }
