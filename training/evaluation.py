"""Reward-model evaluation maths as pure numpy functions: pairwise accuracy and margin, calibration of
sigmoid(r_chosen - r_rejected) (expected calibration error and reliability bins), length bias (accuracy by
response-length difference, correlation of reward with length) and per-source breakdowns.

Calibration of a pair model: the Bradley-Terry probability that the chosen response wins is
``p = sigmoid(r_chosen - r_rejected)``. Every pair is counted in both orders, (p, 1) and (1 - p, 0), so the
reliability diagram covers [0, 1] and is symmetric; the ECE equals the one computed on confidences
``max(p, 1 - p)`` against correctness.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

#: Bucket edges (characters, chosen minus rejected) for accuracy by response-length difference.
LENGTH_DIFF_EDGES: tuple[float, ...] = (-math.inf, -200, -50, 50, 200, math.inf)


def _finite(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def pairwise_accuracy(r_chosen: Sequence[float], r_rejected: Sequence[float]) -> float:
    """Share of pairs where the chosen response scores higher; an exact tie counts half."""
    diff = np.asarray(r_chosen, dtype=float) - np.asarray(r_rejected, dtype=float)
    if diff.size == 0:
        return float("nan")
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def reliability_bins(probs: Sequence[float], labels: Sequence[float], n_bins: int = 10) -> list[dict]:
    """Equal-width bins over [0, 1]: for each, {lo, hi, count, confidence (mean p), accuracy (mean label)}.

    A probability of exactly 1 falls in the last bin. Empty bins have ``None`` confidence and accuracy."""
    p = np.asarray(probs, dtype=float)
    y = np.asarray(labels, dtype=float)
    idx = np.minimum((p * n_bins).astype(int), n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = idx == b
        count = int(mask.sum())
        bins.append(
            {
                "lo": b / n_bins,
                "hi": (b + 1) / n_bins,
                "count": count,
                "confidence": float(p[mask].mean()) if count else None,
                "accuracy": float(y[mask].mean()) if count else None,
            }
        )
    return bins


def expected_calibration_error(probs: Sequence[float], labels: Sequence[float], n_bins: int = 10) -> float:
    """ECE = sum over bins of (bin share) * |mean label - mean probability|."""
    total = len(probs)
    if total == 0:
        return float("nan")
    return float(
        sum(
            b["count"] / total * abs(b["accuracy"] - b["confidence"])
            for b in reliability_bins(probs, labels, n_bins)
            if b["count"]
        )
    )


def pair_calibration(r_chosen: Sequence[float], r_rejected: Sequence[float], n_bins: int = 10):
    """(ECE, reliability bins) of sigmoid(r_chosen - r_rejected), each pair counted in both orders."""
    p = sigmoid(np.asarray(r_chosen, dtype=float) - np.asarray(r_rejected, dtype=float))
    probs = np.concatenate([p, 1 - p])
    labels = np.concatenate([np.ones_like(p), np.zeros_like(p)])
    return expected_calibration_error(probs, labels, n_bins), reliability_bins(probs, labels, n_bins)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; NaN when either side is constant or has fewer than two points."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def accuracy_by_length_difference(
    r_chosen: Sequence[float],
    r_rejected: Sequence[float],
    len_chosen: Sequence[float],
    len_rejected: Sequence[float],
    edges: Sequence[float] = LENGTH_DIFF_EDGES,
) -> list[dict]:
    """Accuracy per bucket of (len_chosen - len_rejected); buckets are [lo, hi) except the last, [lo, hi]."""
    diff = np.asarray(len_chosen, dtype=float) - np.asarray(len_rejected, dtype=float)
    rc, rr = np.asarray(r_chosen, dtype=float), np.asarray(r_rejected, dtype=float)
    out = []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        last = i == len(edges) - 2
        mask = (diff >= lo) & ((diff <= hi) if last else (diff < hi))
        n = int(mask.sum())
        out.append(
            {
                "lo": _finite(lo),
                "hi": _finite(hi),
                "count": n,
                "accuracy": pairwise_accuracy(rc[mask], rr[mask]) if n else None,
            }
        )
    return out


def breakdown_by_group(
    r_chosen: Sequence[float], r_rejected: Sequence[float], groups: Sequence[str]
) -> dict[str, dict]:
    """{group: {count, accuracy, mean_margin}} for a per-source (or per-model-pair) breakdown."""
    index: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        index[g].append(i)
    rc, rr = np.asarray(r_chosen, dtype=float), np.asarray(r_rejected, dtype=float)
    return {
        g: {
            "count": len(ix),
            "accuracy": pairwise_accuracy(rc[ix], rr[ix]),
            "mean_margin": float(np.mean(rc[ix] - rr[ix])),
        }
        for g, ix in sorted(index.items())
    }


def source_of(meta: dict) -> str:
    """The source label of a pair: ``meta["source"]`` if present, else its (sorted) model pair."""
    if meta.get("source"):
        return str(meta["source"])
    models = sorted(str(meta.get(k) or "?") for k in ("chosen_model", "rejected_model"))
    return " vs ".join(models) if any(m != "?" for m in models) else "unknown"


def label_type(meta_row: dict) -> str:
    """A snapshot meta row's ``label_type``; a missing label means "pref". Only "pref" rows are preferences:
    "tie" and "both_bad" rows carry an arbitrary (lo, hi) orientation."""
    return meta_row.get("label_type") or "pref"


def reward_statistics(rewards) -> tuple[float | None, float | None]:
    """Mean and (population) standard deviation of rewards, None where empty or not finite: the card's
    normalisation statistics and the evaluation report's."""
    rewards = np.asarray(rewards, dtype=float)
    if not rewards.size:
        return None, None
    return _finite(float(rewards.mean())), _finite(float(rewards.std()))


def evaluate_pairs(
    r_chosen: Sequence[float],
    r_rejected: Sequence[float],
    rows: Sequence[dict],
    meta: Sequence[dict] | None = None,
    n_bins: int = 10,
) -> dict:
    """The full evaluation report of a reward model on one split (JSON-ready; NaN becomes None).

    ``rows`` are the TRL rows (``chosen`` / ``rejected`` text, for lengths) aligned with the rewards;
    ``meta`` the snapshot's meta rows. Only ``label_type`` "pref" rows (a missing label means pref) enter
    accuracy and calibration: "tie" and "both_bad" rows carry an arbitrary (lo, hi) orientation, so scoring
    them as preferences would be a coin flip. They are counted in ``n_ties`` / ``n_both_bad``.
    """
    meta = list(meta) if meta else [{} for _ in rows]
    rc_all, rr_all = np.asarray(r_chosen, dtype=float), np.asarray(r_rejected, dtype=float)
    labels = [label_type(m) for m in meta]
    prefs = np.array([label == "pref" for label in labels], dtype=bool)
    rc, rr = rc_all[prefs], rr_all[prefs]
    len_c = np.array([len(r["chosen"]) for r in rows], dtype=float)
    len_r = np.array([len(r["rejected"]) for r in rows], dtype=float)
    ece, bins = pair_calibration(rc, rr, n_bins)
    rewards = np.concatenate([rc_all, rr_all])
    reward_mean, reward_std = reward_statistics(rewards)
    report = {
        "n": int(prefs.sum()),
        "n_ties": labels.count("tie"),
        "n_both_bad": labels.count("both_bad"),
        "accuracy": _finite(pairwise_accuracy(rc, rr)),
        "mean_margin": _finite(float(np.mean(rc - rr))) if rc.size else None,
        "ece": _finite(ece),
        "reliability": bins,
        "length_correlation": _finite(pearson(rewards, np.concatenate([len_c, len_r]))),
        "margin_length_correlation": _finite(pearson(rc - rr, len_c[prefs] - len_r[prefs])),
        "accuracy_by_length_diff": [
            {**b, "accuracy": _finite(b["accuracy"]) if b["accuracy"] is not None else None}
            for b in accuracy_by_length_difference(rc, rr, len_c[prefs], len_r[prefs])
        ],
        "by_source": {
            k: {**v, "accuracy": _finite(v["accuracy"]), "mean_margin": _finite(v["mean_margin"])}
            for k, v in breakdown_by_group(
                rc, rr, [source_of(m) for m, keep in zip(meta, prefs, strict=True) if keep]
            ).items()
        },
        "reward_mean": reward_mean,
        "reward_std": reward_std,
    }
    return report


# --- intervals ------------------------------------------------------------------------------------------


def pair_outcomes(r_chosen: Sequence[float], r_rejected: Sequence[float]) -> np.ndarray:
    """Per pair: 1 if the chosen response scores higher, 0 if lower, 0.5 on an exact tie (its mean is
    ``pairwise_accuracy``)."""
    diff = np.asarray(r_chosen, dtype=float) - np.asarray(r_rejected, dtype=float)
    return (diff > 0) + 0.5 * (diff == 0)


def bootstrap_accuracy(
    outcomes: Sequence[float], *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict:
    """Accuracy (mean of ``pair_outcomes``) with a percentile bootstrap interval over the pairs:
    {"accuracy", "ci": [lo, hi], "n"}. The pairs are resampled with replacement ``n_boot`` times."""
    x = np.asarray(outcomes, dtype=float)
    if x.size == 0:
        return {"accuracy": None, "ci": [None, None], "n": 0}
    idx = np.random.default_rng(seed).integers(0, x.size, size=(n_boot, x.size))
    means = x[idx].mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return {"accuracy": float(x.mean()), "ci": [float(lo), float(hi)], "n": int(x.size)}


def paired_bootstrap_difference(
    outcomes_a: Sequence[float],
    outcomes_b: Sequence[float],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Accuracy of A minus accuracy of B on the same pairs, with a paired percentile bootstrap interval
    (each resample draws pairs, and both models are scored on the drawn pairs, so the pair-to-pair variance
    both share cancels). ``verdict`` is "better" when the interval lies above 0, "worse" below, otherwise
    "no clear difference"; ``share_a_ahead`` is the share of resamples where A is ahead."""
    a, b = np.asarray(outcomes_a, dtype=float), np.asarray(outcomes_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes differ in length: {a.size} and {b.size}")
    if a.size == 0:
        return {"difference": None, "ci": [None, None], "verdict": "no pairs", "share_a_ahead": None, "n": 0}
    idx = np.random.default_rng(seed).integers(0, a.size, size=(n_boot, a.size))
    diffs = (a[idx] - b[idx]).mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = (float(v) for v in np.quantile(diffs, [tail, 1 - tail]))
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "no clear difference"
    return {
        "difference": float(a.mean() - b.mean()),
        "ci": [lo, hi],
        "verdict": verdict,
        "share_a_ahead": float(np.mean(diffs > 0)),
        "n": int(a.size),
        "n_boot": n_boot,
    }
