"""Bootstrap confidence intervals of a task-set score (the mean of per-item scores).

Percentile bootstrap: resample the items with replacement ``n_boot`` times, take the mean of each resample
and report the 2.5th and 97.5th percentiles. With the 30-60 items of a task set the interval is wide (a
0.5 score on 40 items spans about ±0.15), which is the point: a regression smaller than the interval is
not evidence. Seeded, so the same outcomes always give the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ScoreInterval:
    score: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"score": self.score, "low": self.low, "high": self.high, "n": self.n}


def bootstrap_interval(
    outcomes: Sequence[float], *, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> ScoreInterval:
    """Mean of ``outcomes`` with its percentile-bootstrap interval; an empty list gives zeros and n=0."""
    values = np.asarray(outcomes, dtype=float)
    n = int(values.size)
    if n == 0:
        return ScoreInterval(0.0, 0.0, 0.0, 0)
    mean = float(values.mean())
    if n_boot <= 0 or n == 1:
        return ScoreInterval(mean, mean, mean, n)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    # The percentile interval of a skewed resample can miss the mean by a rounding hair: keep it inside.
    return ScoreInterval(mean, float(min(low, mean)), float(max(high, mean)), n)
