"""Per-annotator statistics: gold accuracy, leave-one-out consensus agreement, swapped-repeat consistency,
position bias (binomial test), tie rate, speed, daily volume and drift (a Bernoulli CUSUM).

Everything takes a :class:`Votes` table (one row per judgment, numpy columns) so the same code serves the web
pages, the API, the flag rules and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

MIRROR = {"A": "B", "B": "A", "tie": "tie", "both_bad": "both_bad"}


@dataclass
class Votes:
    """Judgments as columns. ``repeat_of`` is the task id a swapped repeat mirrors (0 when not a repeat);
    ``gold`` the known answer ("" when not a gold task); ``day`` an ISO date string."""

    id: np.ndarray
    task: np.ndarray
    annotator: np.ndarray
    choice: np.ndarray
    strength: np.ndarray  # 0 where not given
    time_ms: np.ndarray
    created: np.ndarray  # float seconds since epoch (for ordering)
    day: np.ndarray
    gold: np.ndarray
    repeat_of: np.ndarray

    def __len__(self) -> int:
        return len(self.id)

    def subset(self, mask: np.ndarray) -> Votes:
        return Votes(**{k: getattr(self, k)[mask] for k in self.columns()})

    @staticmethod
    def columns() -> tuple[str, ...]:
        return (
            "id",
            "task",
            "annotator",
            "choice",
            "strength",
            "time_ms",
            "created",
            "day",
            "gold",
            "repeat_of",
        )

    @classmethod
    def from_rows(cls, rows: list[dict]) -> Votes:
        """Build from dicts with the column names as keys (missing optional keys get defaults)."""
        defaults = {"strength": 0, "time_ms": 0, "created": 0.0, "day": "", "gold": "", "repeat_of": 0}
        data = {}
        for name in cls.columns():
            values = [r.get(name, defaults.get(name)) for r in rows]
            if name in ("choice", "day", "gold"):
                data[name] = np.array(values, dtype=object)
            elif name == "created":
                data[name] = np.array(values, dtype=float)
            else:
                data[name] = np.array(values, dtype=np.int64)
        return cls(**data)


def loo_consensus_agreement(votes: Votes) -> np.ndarray:
    """Per judgment: 1 if it matches the majority of the *other* judgments of its task, 0 if not, NaN when
    the others have no strict majority (none, or a tie for first place)."""
    out = np.full(len(votes), np.nan)
    choices = sorted(MIRROR)
    code = {c: k for k, c in enumerate(choices)}
    if len(votes) == 0:
        return out
    tasks, t_idx = np.unique(votes.task, return_inverse=True)
    c_idx = np.array([code[c] for c in votes.choice], dtype=np.int64)
    counts = np.zeros((len(tasks), len(choices)))
    np.add.at(counts, (t_idx, c_idx), 1.0)
    others = counts[t_idx].copy()
    others[np.arange(len(votes)), c_idx] -= 1.0
    top = others.max(axis=1)
    n_top = (others == top[:, None]).sum(axis=1)
    has_majority = (top > 0) & (n_top == 1)
    winner = others.argmax(axis=1)
    out[has_majority] = (winner[has_majority] == c_idx[has_majority]).astype(float)
    return out


def group_indices(keys: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The distinct keys and, for each, the positions that hold it (in their original order): one stable
    sort instead of a full scan per key."""
    keys = np.asarray(keys)
    order = np.argsort(keys, kind="stable")
    distinct, starts = np.unique(keys[order], return_index=True)
    return distinct, np.split(order, starts[1:]) if len(order) else []


def repeat_pairs(votes: Votes) -> list[tuple[int, int, bool]]:
    """(annotator, repeat task, consistent) for every swapped repeat an annotator judged along with its
    original: consistent when the repeat's answer is the mirror image (A<->B, tie and both_bad unchanged)."""
    repeats = np.flatnonzero(votes.repeat_of > 0)
    if len(repeats) == 0:
        return []
    # (annotator, task) as one int64 key; the original of a repeat is found by binary search.
    width = int(max(votes.task.max(), votes.repeat_of.max())) + 1
    keys = votes.annotator.astype(np.int64) * width + votes.task
    order = np.argsort(keys, kind="stable")
    wanted = votes.annotator[repeats].astype(np.int64) * width + votes.repeat_of[repeats]
    pos = np.minimum(np.searchsorted(keys[order], wanted), len(order) - 1)
    found = keys[order][pos] == wanted
    out = []
    for r, p in zip(repeats[found], order[pos[found]], strict=True):
        out.append((int(votes.annotator[r]), int(votes.task[r]), MIRROR[votes.choice[p]] == votes.choice[r]))
    return out


def position_bias(n_a: int, n_b: int) -> dict:
    """Share of "A" among decisive (A or B) answers and a two-sided exact binomial test against 1/2.

    Under p = 1/2 the binomial is symmetric, so the exact two-sided p-value (the probability of outcomes no
    likelier than the one seen, as ``scipy.stats.binomtest`` sums it) is twice the smaller tail, capped at 1:
    one CDF evaluation instead of binomtest's search, which matters with a thousand annotators."""
    n = n_a + n_b
    if n == 0:
        return {"share_a": None, "n": 0, "p_value": None}
    p_value = 1.0 if 2 * n_a == n else min(1.0, 2.0 * float(binom.cdf(min(n_a, n_b), n, 0.5)))
    return {"share_a": n_a / n, "n": n, "p_value": p_value}


def bernoulli_cusum(x: np.ndarray, p0: float, p1: float) -> np.ndarray:
    """Page's CUSUM path for a drop in a success rate from ``p0`` to ``p1`` (< p0).

    S_t = max(0, S_{t-1} + log LR_t), LR_t = P(x_t | p1) / P(x_t | p0). An alarm at threshold h has a Wald
    SPRT flavour: h = ln(1/alpha) bounds the false alarm rate per run at about alpha."""
    p0 = min(max(p0, 1e-3), 1 - 1e-3)
    p1 = min(max(p1, 1e-3), 1 - 1e-3)
    llr = np.where(np.asarray(x) > 0.5, np.log(p1 / p0), np.log((1 - p1) / (1 - p0)))
    path = np.empty(len(llr))
    s = 0.0
    for k, v in enumerate(llr):
        s = max(0.0, s + v)
        path[k] = s
    return path


def drift_test(
    correct: np.ndarray,
    *,
    window: int = 100,
    min_baseline: int = 30,
    delta: float = 0.25,
    alpha: float = 0.01,
) -> dict:
    """Sudden drift over the most recent ``window`` observations of a 0/1 quality signal (time order).

    Baseline p0 = the annotator's own rate before the window; the CUSUM looks for a drop to p0 - delta in the
    window. Its maximum over the window is a maximum over every possible start of the drop, so the threshold
    is ln(n / alpha) for n observations in the window (Ville's inequality bounds each start's log-likelihood
    ratio by alpha / n: at most alpha false alarms per window in all), not ln(1 / alpha), which alarmed on
    about a third of honest simulated annotators. The alarm also needs the window's own rate to have fallen
    by at least delta / 2, so a noisy baseline alone cannot raise it."""
    x = np.asarray(correct, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < min_baseline + 10:
        return {"drift": False, "reason": "too few observations", "n": int(len(x))}
    recent_n = min(window, len(x) - min_baseline)
    baseline, recent = x[:-recent_n], x[-recent_n:]
    p0 = float(baseline.mean())
    p1 = p0 - delta
    if p1 <= 0.0:
        return {"drift": False, "reason": "baseline too low for a drop", "n": int(len(x)), "baseline": p0}
    path = bernoulli_cusum(recent, p0, p1)
    h = float(np.log(recent_n / alpha))
    dropped = float(recent.mean()) <= p0 - delta / 2
    return {
        "drift": bool(path.max() > h and dropped),
        "n": int(len(x)),
        "baseline": p0,
        "recent": float(recent.mean()),
        "recent_n": int(recent_n),
        "cusum_max": float(path.max()),
        "threshold": h,
        "path": [round(float(v), 4) for v in path],
    }


@dataclass(frozen=True)
class AnnotatorStats:
    annotator: int
    n: int
    gold_n: int
    gold_accuracy: float | None
    consensus_n: int
    consensus_agreement: float | None
    repeat_n: int
    repeat_consistency: float | None
    share_a: float | None
    position_p_value: float | None
    tie_rate: float | None
    median_time_ms: float | None
    fast_share: float | None
    daily_volume: dict[str, int]

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _rate(x: np.ndarray) -> tuple[int, float | None]:
    x = x[~np.isnan(x)]
    return int(len(x)), (float(x.mean()) if len(x) else None)


def annotator_stats(
    votes: Votes, *, fast_ms: int = 2000, loo: np.ndarray | None = None
) -> list[AnnotatorStats]:
    """Per-annotator statistics over ``votes``. ``loo`` is the leave-one-out consensus agreement aligned with
    ``votes`` (computed over ``votes`` when not given; pass it when ``votes`` is a slice of a larger table)."""
    loo = loo_consensus_agreement(votes) if loo is None else loo
    gold_correct = np.where(votes.gold != "", (votes.choice == votes.gold).astype(float), np.nan)
    repeats: dict[int, list[bool]] = {}
    for a, _t, ok in repeat_pairs(votes):
        repeats.setdefault(a, []).append(ok)
    out = []
    annotators, positions = group_indices(votes.annotator)
    for a, m in zip(annotators, positions, strict=True):
        choice = votes.choice[m]
        gold_n, gold_acc = _rate(gold_correct[m])
        cons_n, cons = _rate(loo[m])
        rep = repeats.get(int(a), [])
        bias = position_bias(int((choice == "A").sum()), int((choice == "B").sum()))
        times = votes.time_ms[m]
        days, per_day = np.unique(votes.day[m], return_counts=True)
        out.append(
            AnnotatorStats(
                annotator=int(a),
                n=len(m),
                gold_n=gold_n,
                gold_accuracy=gold_acc,
                consensus_n=cons_n,
                consensus_agreement=cons,
                repeat_n=len(rep),
                repeat_consistency=(sum(rep) / len(rep)) if rep else None,
                share_a=bias["share_a"],
                position_p_value=bias["p_value"],
                tie_rate=float((choice == "tie").mean()) if len(choice) else None,
                median_time_ms=float(np.median(times)) if len(times) else None,
                fast_share=float((times < fast_ms).mean()) if len(times) else None,
                daily_volume={str(d): int(c) for d, c in zip(days, per_day, strict=True)},
            )
        )
    return out


def quality_signal(votes: Votes, loo: np.ndarray | None = None) -> np.ndarray:
    """Per judgment: gold correctness on gold tasks, else agreement with the leave-one-out consensus (NaN
    where neither is known). The drift test runs on this signal in time order."""
    loo = loo_consensus_agreement(votes) if loo is None else loo
    gold_correct = (votes.choice == votes.gold).astype(float)
    return np.where(votes.gold != "", gold_correct, loo)
