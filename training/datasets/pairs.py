"""Pure pair maths for Bradley-Terry datasets: orient votes, expand rankings, combine several votes on one
pair, map strength to margin, and assign prompts to splits. No database, no files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from training.datasets.spec import SPLIT_NAMES, SnapshotSpec

# A vote's label relative to its pair (lo, hi) = (smaller candidate id, larger candidate id).
LO, HI, TIE, BOTH_BAD = "lo", "hi", "tie", "both_bad"


class Vote(NamedTuple):
    """One answer about the unordered pair (lo, hi) of a prompt's candidates.

    ``judgment_ids`` is one id for a judgment; an adjudication carries the ids of every judgment it settled.
    """

    judgment_ids: tuple[int, ...]
    task_id: int
    project_id: int
    annotator_id: int | None
    lo: int
    hi: int
    label: str
    strength: int | None = None
    adjudicated: bool = False


class PairRow(NamedTuple):
    """One output row: ``chosen`` over ``rejected`` (for neutral labels the order is lo, hi)."""

    chosen_id: int
    rejected_id: int
    label_type: str  # "pref", "tie" or "both_bad"
    margin: float | None
    judgment_ids: tuple[int, ...]
    agreement: float


def orient(choice: str, candidate_a: int, candidate_b: int) -> tuple[int, int, str]:
    """Map a task answer (A, B, tie, both_bad) on an ordered task to (lo, hi, label)."""
    lo, hi = (candidate_a, candidate_b) if candidate_a < candidate_b else (candidate_b, candidate_a)
    if choice == "A":
        return lo, hi, LO if candidate_a == lo else HI
    if choice == "B":
        return lo, hi, LO if candidate_b == lo else HI
    if choice in (TIE, BOTH_BAD):
        return lo, hi, choice
    raise ValueError(f"unknown choice {choice!r}")


def ranking_pair_kept(order: Sequence[int], x: int, y: int, mode: str) -> bool:
    """Whether the pair (x, y) of a ranking (candidate ids, best first) enters under ``mode``.

    ``all_pairs`` keeps every pair; ``best_vs_rest`` keeps pairs with the top item; ``adjacent`` keeps
    neighbours in the order. A pair not in the order is kept (nothing says to drop it).
    """
    if mode == "all_pairs":
        return True
    try:
        i, j = order.index(x), order.index(y)
    except ValueError:
        return True
    if mode == "best_vs_rest":
        return min(i, j) == 0
    if mode == "adjacent":
        return abs(i - j) == 1
    raise ValueError(f"unknown ranking pair mode {mode!r}")


def ranking_pairs(order: Sequence[int], mode: str) -> list[tuple[int, int]]:
    """The (better, worse) pairs a ranking becomes under ``mode`` (for callers expanding rankings)."""
    n = len(order)
    if mode == "all_pairs":
        return [(order[i], order[j]) for i in range(n) for j in range(i + 1, n)]
    if mode == "best_vs_rest":
        return [(order[0], order[j]) for j in range(1, n)]
    if mode == "adjacent":
        return [(order[i], order[i + 1]) for i in range(n - 1)]
    raise ValueError(f"unknown ranking pair mode {mode!r}")


def strength_margin(strength: int | None, spec: SnapshotSpec) -> float:
    """Margin of one preference vote under the spec's documented strength mapping."""
    if spec.margin != "strength" or strength is None:
        return spec.default_margin if spec.margin == "strength" else 0.0
    return float(spec.margin_by_strength.get(str(strength), spec.default_margin))


def apply_adjudication(votes: Sequence[Vote]) -> list[Vote]:
    """When a reviewer adjudicated a task of this pair, the adjudicated answer stands alone (it carries the
    settled judgments' ids). Several adjudicated tasks on one pair: the latest task wins."""
    adjudicated = [v for v in votes if v.adjudicated]
    if not adjudicated:
        return list(votes)
    return [max(adjudicated, key=lambda v: v.task_id)]


def _row(label: str, votes: Sequence[Vote], weights: Sequence[float], ids, agreement, spec) -> PairRow | None:
    lo, hi = votes[0].lo, votes[0].hi
    if label in (TIE, BOTH_BAD):
        mode = spec.ties if label == TIE else spec.both_bad
        if mode == "drop":
            return None
        return PairRow(lo, hi, label, 0.0, tuple(ids), agreement)
    chosen, rejected = (lo, hi) if label == LO else (hi, lo)
    margin = None
    if spec.margin == "strength":
        total = sum(weights)
        margin = sum(w * strength_margin(v.strength, spec) for v, w in zip(votes, weights, strict=True))
        margin = margin / total if total > 0 else spec.default_margin
    elif spec.has_margin:
        margin = 0.0
    return PairRow(chosen, rejected, "pref", margin, tuple(ids), agreement)


def combine_pair(
    votes: Sequence[Vote], *, spec: SnapshotSpec, weights: Mapping[tuple[int, int], float] | None = None
) -> tuple[list[PairRow], str | None]:
    """Turn all votes on one pair into output rows, or none with the reason they were dropped.

    ``weights`` maps (project_id, annotator_id) -> reliability; used only by ``reliability_weighted``
    (missing annotators and adjudications weigh 1). Returns (rows, drop_reason).
    """
    votes = apply_adjudication(votes)
    if spec.combine == "reliability_weighted" and weights:
        w = [float(weights.get((v.project_id, v.annotator_id), 1.0)) for v in votes]
    else:
        w = [1.0] * len(votes)
    total = sum(w)
    if not votes or total <= 0:
        return [], "zero_weight"
    by_label: dict[str, float] = {}
    for vote, weight in zip(votes, w, strict=True):
        by_label[vote.label] = by_label.get(vote.label, 0.0) + weight
    top = max(by_label.values())
    winners = [label for label, value in by_label.items() if abs(value - top) <= 1e-9]
    agreement = top / total
    if agreement + 1e-9 < spec.min_agreement:
        return [], "low_agreement"
    if spec.combine == "per_vote":
        rows = []
        for vote, weight in zip(votes, w, strict=True):
            row = _row(vote.label, [vote], [weight], vote.judgment_ids, agreement, spec)
            if row is not None:
                rows.append(row)
        return rows, (None if rows else f"{votes[0].label}_dropped")
    if len(winners) > 1:
        return [], "no_majority"
    label = winners[0]
    chosen_votes = [v for v in votes if v.label == label]
    chosen_weights = [wi for v, wi in zip(votes, w, strict=True) if v.label == label]
    ids = sorted(i for v in votes for i in v.judgment_ids)
    row = _row(label, chosen_votes, chosen_weights, ids, agreement, spec)
    return ([row], None) if row is not None else ([], f"{label}_dropped")


def prompt_split_key(content_hash: str) -> int:
    """The key a prompt is split by: the first 60 bits of its content hash (sha256 hex).

    Prompts are unique only per (project, content hash), so the same text imported into two projects is two
    prompt rows; keying the split on the content, not the row id, keeps that text in a single split. A 60-bit
    prefix fits an int64 and collides with odds ~n^2/2^61 (a collision only puts two prompts in one split).
    """
    return int(content_hash[:15], 16)


class PromptSplitter:
    """Seeded assignment of prompts to train/validation/test: a shuffle of the sorted prompt keys cut by the
    spec's shares (rounded; test takes the rest). Memory is two small numpy arrays per prompt.

    The export keys prompts by ``prompt_split_key`` (their content), so equal prompt texts from different
    projects share a split; any distinct integer keys work.
    """

    def __init__(self, prompt_ids: Iterable[int], shares: Mapping[str, float], seed: int):
        self.ids = np.unique(np.fromiter(prompt_ids, dtype=np.int64))
        n = len(self.ids)
        n_train = min(n, round(n * shares["train"]))
        n_val = min(n - n_train, round(n * shares["validation"]))
        order = np.random.default_rng(seed).permutation(n)
        self.codes = np.full(n, 2, dtype=np.uint8)
        self.codes[order[:n_train]] = 0
        self.codes[order[n_train : n_train + n_val]] = 1
        self._cursor = 0

    def split_of(self, prompt_id: int) -> str:
        # Keys read in ascending order step a cursor forward (amortised O(1)); others jump with a binary
        # search.
        i, ids = self._cursor, self.ids
        if i < len(ids) and ids[i] <= prompt_id and (i + 1 >= len(ids) or ids[i + 1] >= prompt_id):
            i = i if ids[i] == prompt_id else i + 1
        else:
            i = int(np.searchsorted(ids, prompt_id))
        self._cursor = min(i, max(len(ids) - 1, 0))
        if i >= len(self.ids) or self.ids[i] != prompt_id:
            raise KeyError(prompt_id)
        return SPLIT_NAMES[self.codes[i]]

    def sizes(self) -> dict[str, int]:
        counts = np.bincount(self.codes, minlength=3)
        return {name: int(counts[i]) for i, name in enumerate(SPLIT_NAMES)}
