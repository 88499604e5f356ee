"""Rollout statistics logged by policy runs: distinct-n diversity and response length statistics."""

from __future__ import annotations

import statistics
from collections.abc import Hashable, Sequence


def distinct_n(sequences: Sequence[Sequence[Hashable]], n: int) -> float:
    """Unique n-grams / total n-grams across all sequences (Li et al., 2016). 0.0 when there are none.

    Sequences are token ids or words; 1.0 means no n-gram repeats anywhere in the batch.
    """
    total, unique = 0, set()
    for seq in sequences:
        seq = list(seq)
        for i in range(len(seq) - n + 1):
            unique.add(tuple(seq[i : i + n]))
            total += 1
    return len(unique) / total if total else 0.0


def distinct_n_text(texts: Sequence[str], n: int) -> float:
    """distinct-n over whitespace words of texts."""
    return distinct_n([t.split() for t in texts], n)


def length_stats(lengths: Sequence[int | float]) -> dict[str, float]:
    """Mean / std / min / median / max of response lengths (tokens or characters)."""
    if not lengths:
        return {"mean": 0.0, "std": 0.0, "min": 0.0, "median": 0.0, "max": 0.0}
    values = [float(x) for x in lengths]
    return {
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values),
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }
