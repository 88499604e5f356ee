"""Inter-annotator agreement: raw agreement, Cohen's kappa, Fleiss' kappa, Krippendorff's alpha, bootstrap CIs.

Every metric takes a *reliability matrix* ``ratings`` of shape (units, raters): one row per task, one column per
annotator, ``NaN`` where that annotator did not judge the task. Values are category codes (nominal) or
numbers on an ordered scale (ordinal). Units with fewer than two ratings carry no information about agreement
and are ignored, as in Krippendorff (2011).

Each metric is computed from per-unit sufficient statistics (category counts, coincidences) so a bootstrap
over units is a weighted sum: resampling units with replacement is a vector of draw counts, and 1,000
replicates cost a few matrix products instead of 1,000 recomputations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Codes for the nominal A/B/tie(/both_bad) scale and the signed ordinal strength scale.
NOMINAL_CODES: dict[str, int] = {"A": 0, "B": 1, "tie": 2, "both_bad": 3}


def ordinal_value(choice: str, strength: int | None) -> float:
    """The signed strength scale: A much better = -3 ... tie = 0 ... B much better = +3.

    A missing strength (projects that do not ask for it) counts as 1 ("slightly"). "Both bad" has no place on
    this scale and is treated as missing (NaN)."""
    if choice == "tie":
        return 0.0
    if choice not in ("A", "B"):
        return float("nan")
    s = float(strength or 1)
    return -s if choice == "A" else s


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a bootstrap percentile interval (``low``/``high`` are NaN without a bootstrap)."""

    value: float
    low: float
    high: float
    n_units: int

    def as_dict(self) -> dict:
        def clean(x: float) -> float | None:
            return None if x is None or not np.isfinite(x) else round(float(x), 6)

        return {
            "value": clean(self.value),
            "low": clean(self.low),
            "high": clean(self.high),
            "n": self.n_units,
        }


# --------------------------------------------------------------------------------------------------------------
# Building blocks


def _as_matrix(ratings) -> np.ndarray:
    m = np.asarray(ratings, dtype=float)
    if m.ndim != 2:
        raise ValueError("ratings must be a 2-D (units x raters) array")
    return m


def _value_index(m: np.ndarray, values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The sorted set of values and a (units x raters) int matrix of their indices (-1 where missing)."""
    observed = m[~np.isnan(m)]
    values = np.unique(observed) if values is None else np.asarray(values, dtype=float)
    idx = np.full(m.shape, -1, dtype=np.int64)
    mask = ~np.isnan(m)
    idx[mask] = np.searchsorted(values, m[mask])
    return values, idx


def unit_counts(ratings, values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit counts of each value: returns (values, counts of shape (units, n_values))."""
    m = _as_matrix(ratings)
    values, idx = _value_index(m, values)
    counts = np.zeros((m.shape[0], len(values)), dtype=float)
    rows, cols = np.nonzero(idx >= 0)
    np.add.at(counts, (rows, idx[rows, cols]), 1.0)
    return values, counts


def _bootstrap_weights(n_units: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_units) resampling weights: how often each unit is drawn when n_units units are drawn with
    replacement (the ordinary bootstrap), from uniform indices and one ``bincount``."""
    idx = rng.integers(0, n_units, size=(n_boot, n_units)) + n_units * np.arange(n_boot)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n_units).reshape(n_boot, n_units).astype(float)


def _percentile(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def _estimates(
    stats: dict[str, Callable[[np.ndarray], np.ndarray]],
    n_units: int,
    n_boot: int,
    confidence: float,
    seed: int,
) -> dict[str, Estimate]:
    """Evaluate statistics over the same units on the same bootstrap replicates.

    Each ``stat`` maps a (k, n_units) weight matrix to k values; the weights are drawn once for all of them."""
    nan = float("nan")
    if n_units == 0:
        return {name: Estimate(nan, nan, nan, 0) for name in stats}
    ones = np.ones((1, n_units))
    values = {name: float(stat(ones)[0]) for name, stat in stats.items()}
    if n_boot <= 0:
        return {name: Estimate(v, nan, nan, n_units) for name, v in values.items()}
    rng = np.random.default_rng(seed)
    samples: dict[str, list[np.ndarray]] = {name: [] for name in stats}
    # Chunks of replicates keep the weight matrix near 2M entries (16 MB) whatever the number of units.
    chunk = max(1, min(n_boot, 2_000_000 // n_units))
    for start in range(0, n_boot, chunk):
        w = _bootstrap_weights(n_units, min(chunk, n_boot - start), rng)
        for name, stat in stats.items():
            samples[name].append(stat(w))
    out = {}
    for name, v in values.items():
        low, high = _percentile(np.concatenate(samples[name]), confidence)
        out[name] = Estimate(v, low, high, n_units)
    return out


def _estimate(
    stat: Callable[[np.ndarray], np.ndarray], n_units: int, n_boot: int, confidence: float, seed: int
) -> Estimate:
    return _estimates({"x": stat}, n_units, n_boot, confidence, seed)["x"]


# --------------------------------------------------------------------------------------------------------------
# Raw agreement


def _pairable_counts(ratings) -> np.ndarray:
    _, counts = unit_counts(ratings)
    return counts[counts.sum(axis=1) >= 2]


def raw_agreement(ratings, *, n_boot: int = 0, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Share of agreeing rater pairs within a unit, averaged over units with at least two ratings."""
    counts = _pairable_counts(ratings)
    return _estimate(_raw_stat(counts), len(counts), n_boot, confidence, seed)


def _pair_agreement(counts: np.ndarray) -> np.ndarray:
    n = counts.sum(axis=1)
    return (counts * (counts - 1)).sum(axis=1) / (n * (n - 1)) if len(counts) else np.zeros(0)


def _raw_stat(counts: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    per_unit = _pair_agreement(counts)

    def stat(w: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (w @ per_unit) / w.sum(axis=1)

    return stat


# --------------------------------------------------------------------------------------------------------------
# Cohen's kappa (two raters)


def cohen_kappa(
    a, b, *, n_boot: int = 0, confidence: float = 0.95, seed: int = 0, values: np.ndarray | None = None
) -> Estimate:
    """Cohen's kappa for two raters' labels on the same units (NaN in either one drops the unit).

    kappa = (p_o - p_e) / (1 - p_e) with p_e from the two raters' own marginals."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if values is None:
        values = np.unique(np.concatenate([a, b]))
    k = len(values)
    ia = np.searchsorted(values, a)
    ib = np.searchsorted(values, b)
    # One-hot per unit so a bootstrap weight vector gives the weighted contingency margins.
    one_a = np.zeros((len(a), k))
    one_b = np.zeros((len(b), k))
    one_a[np.arange(len(a)), ia] = 1.0
    one_b[np.arange(len(b)), ib] = 1.0
    agree = (ia == ib).astype(float)

    def stat(w: np.ndarray) -> np.ndarray:
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            p_o = (w @ agree) / total
            pa = (w @ one_a) / total[:, None]
            pb = (w @ one_b) / total[:, None]
            p_e = (pa * pb).sum(axis=1)
            kappa = (p_o - p_e) / (1.0 - p_e)
        # Both raters constant and equal: perfect agreement with no chance correction possible.
        return np.where(np.isclose(p_e, 1.0) & np.isclose(p_o, 1.0), 1.0, kappa)

    return _estimate(stat, len(a), n_boot, confidence, seed)


def pairwise_cohen_kappa(
    ratings,
    rater_ids: list,
    *,
    min_overlap: int = 10,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[dict]:
    """Cohen's kappa for every pair of raters (columns) sharing at least ``min_overlap`` units."""
    m = _as_matrix(ratings)
    values = np.unique(m[~np.isnan(m)])
    present = ~np.isnan(m)
    overlap = present.T.astype(int) @ present.astype(int)
    out = []
    for i in range(m.shape[1]):
        for j in range(i + 1, m.shape[1]):
            if overlap[i, j] < min_overlap:
                continue
            est = cohen_kappa(
                m[:, i],
                m[:, j],
                n_boot=n_boot,
                confidence=confidence,
                seed=seed + i * 7919 + j,
                values=values,
            )
            out.append({"rater_a": rater_ids[i], "rater_b": rater_ids[j], **est.as_dict()})
    return out


# --------------------------------------------------------------------------------------------------------------
# Fleiss' kappa


def fleiss_kappa(ratings, *, n_boot: int = 0, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Fleiss' kappa (1971), generalised to a varying number of raters per unit.

    P_i = sum_j n_ij (n_ij - 1) / (n_i (n_i - 1)) per unit; P_bar = mean P_i; p_j = share of all ratings in
    category j; P_e = sum_j p_j^2; kappa = (P_bar - P_e) / (1 - P_e). With a constant n_i this is exactly
    Fleiss' statistic."""
    counts = _pairable_counts(ratings)
    return _estimate(_fleiss_stat(counts), len(counts), n_boot, confidence, seed)


def _fleiss_stat(counts: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    per_unit = _pair_agreement(counts)

    def stat(w: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            p_bar = (w @ per_unit) / w.sum(axis=1)
            cat = w @ counts
            p = cat / cat.sum(axis=1, keepdims=True)
            p_e = (p**2).sum(axis=1)
            return (p_bar - p_e) / (1.0 - p_e)

    return stat


# --------------------------------------------------------------------------------------------------------------
# Krippendorff's alpha


def _delta_squared(values: np.ndarray, marginals: np.ndarray, level: str) -> np.ndarray:
    """Krippendorff's difference function between value c and value k (a (V, V) matrix)."""
    v = len(values)
    if level == "nominal":
        return 1.0 - np.eye(v)
    if level == "interval":
        return (values[:, None] - values[None, :]) ** 2
    if level == "ordinal":
        # delta(c, k) = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2 over the ranks between c and k.
        cum = np.concatenate([[0.0], np.cumsum(marginals)])
        lo = np.minimum.outer(np.arange(v), np.arange(v))
        hi = np.maximum.outer(np.arange(v), np.arange(v))
        between = cum[hi + 1] - cum[lo]
        return (between - (marginals[:, None] + marginals[None, :]) / 2.0) ** 2
    raise ValueError(f"unknown level of measurement {level!r}")


def unit_coincidences(counts: np.ndarray) -> np.ndarray:
    """Per-unit coincidence matrices o_ck = n_c n_k (c != k) or n_c (n_c - 1) (c == k), divided by m_u - 1."""
    m_u = counts.sum(axis=1)
    outer = counts[:, :, None] * counts[:, None, :]
    diag = np.arange(counts.shape[1])
    outer[:, diag, diag] -= counts
    return outer / (m_u - 1.0)[:, None, None]


def krippendorff_alpha(
    ratings,
    *,
    level: str = "nominal",
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    values: np.ndarray | None = None,
) -> Estimate:
    """Krippendorff's alpha = 1 - D_o / D_e from the coincidence matrix (Krippendorff 2011).

    ``level`` is "nominal", "ordinal" or "interval". For the ordinal metric ``values`` fixes the ordered
    scale (default: the values observed); only their order matters."""
    values, counts = unit_counts(_as_matrix(ratings), values)
    counts = counts[counts.sum(axis=1) >= 2]
    return _estimate(_alpha_stat(counts, values, level), len(counts), n_boot, confidence, seed)


def _alpha_stat(counts: np.ndarray, values: np.ndarray, level: str) -> Callable[[np.ndarray], np.ndarray]:
    per_unit = unit_coincidences(counts).reshape(len(counts), len(values) ** 2)

    def stat(w: np.ndarray) -> np.ndarray:
        o = (w @ per_unit).reshape(len(w), len(values), len(values))
        n_c = o.sum(axis=2)
        n = n_c.sum(axis=1)
        out = np.empty(len(w))
        for r in range(len(w)):
            d2 = _delta_squared(values, n_c[r], level)
            d_o = (o[r] * d2).sum()
            d_e = (np.outer(n_c[r], n_c[r]) * d2).sum()
            # alpha = 1 - D_o / D_e with D_o = d_o / n and D_e = d_e / (n (n - 1)).
            out[r] = 1.0 - (n[r] - 1.0) * d_o / d_e if d_e > 0 else (1.0 if d_o == 0 else np.nan)
        return out

    return stat


def agreement_summary(
    nominal: np.ndarray,
    ordinal: np.ndarray,
    *,
    rater_ids: list,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_pair_overlap: int = 10,
    max_pair_boot: int = 200,
) -> dict:
    """All agreement metrics for one group of units, each with a bootstrap interval, as plain data.

    Cohen's kappa for annotator pairs uses at most ``max_pair_boot`` replicates per pair: a project with 30
    annotators has 435 pairs, and their intervals are a guide, not the headline number."""
    # Raw agreement, Fleiss and nominal alpha share the units (tasks with two or more answers) and therefore
    # the bootstrap replicates.
    values, counts = unit_counts(_as_matrix(nominal))
    counts = counts[counts.sum(axis=1) >= 2]
    shared = _estimates(
        {
            "raw_agreement": _raw_stat(counts),
            "fleiss_kappa": _fleiss_stat(counts),
            "krippendorff_alpha_nominal": _alpha_stat(counts, values, "nominal"),
        },
        len(counts),
        n_boot,
        confidence,
        seed,
    )
    return {
        **{name: est.as_dict() for name, est in shared.items()},
        "krippendorff_alpha_ordinal": krippendorff_alpha(
            ordinal,
            level="ordinal",
            n_boot=n_boot,
            confidence=confidence,
            seed=seed,
            values=np.arange(-3.0, 4.0),
        ).as_dict(),
        "cohen_kappa_pairs": pairwise_cohen_kappa(
            nominal,
            rater_ids,
            min_overlap=min_pair_overlap,
            n_boot=min(n_boot, max_pair_boot),
            confidence=confidence,
            seed=seed,
        ),
    }
