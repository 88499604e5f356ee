"""Inter-annotator agreement: raw agreement, Cohen's kappa, Fleiss' kappa, Krippendorff's alpha, bootstrap CIs.

Every metric takes a *reliability matrix* ``ratings`` of shape (units, raters): one row per task, one column per
annotator, ``NaN`` where that annotator did not judge the task. Values are category codes (nominal) or
numbers on an ordered scale (ordinal). Units with fewer than two ratings carry no information about agreement
and are ignored, as in Krippendorff (2011).

Each metric is computed from per-unit sufficient statistics (category counts, coincidences) so a bootstrap
over units is a weighted sum: resampling units with replacement is a vector of draw counts, and 1,000
replicates cost a few matrix products instead of 1,000 recomputations. Units with the same count row are
interchangeable, so rows are first collapsed to the distinct ones with their multiplicities (with k votes per
task a million tasks have a few dozen distinct rows) and a replicate is one multinomial draw over them: the
same distribution as drawing units, at a cost that does not grow with the number of tasks.

Large projects never build the (units x raters) matrix: :func:`agreement_from_counts` takes the per-task
count rows and the per-rater-pair contingency tables that SQL aggregates (``GROUP BY task, choice``).
"""

from __future__ import annotations

import warnings
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


def distinct_rows(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct count rows and how many units share each (the sufficient statistic of every metric here)."""
    counts = np.asarray(counts, dtype=float)
    if len(counts) == 0:
        return counts.reshape(0, counts.shape[1] if counts.ndim == 2 else 0), np.zeros(0)
    rows, mult = np.unique(counts, axis=0, return_counts=True)
    return rows, mult.astype(float)


def _bootstrap_weights(multiplicity: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, rows) resampling weights: how many of the n drawn units (n = total multiplicity, drawn with
    replacement: the ordinary bootstrap) fall on each distinct row, i.e. a multinomial draw."""
    n = int(round(multiplicity.sum()))
    return rng.multinomial(n, multiplicity / multiplicity.sum(), size=n_boot).astype(float)


def _percentile(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def _estimates(
    stats: dict[str, Callable[[np.ndarray], np.ndarray]],
    multiplicity: np.ndarray,
    n_boot: int,
    confidence: float,
    seed: int,
) -> dict[str, Estimate]:
    """Evaluate statistics over the same units on the same bootstrap replicates.

    Each ``stat`` maps a (k, rows) weight matrix over the distinct count rows to k values; ``multiplicity``
    is how many units each row stands for. The weights are drawn once for all statistics."""
    nan = float("nan")
    n_units = int(round(multiplicity.sum()))
    if n_units == 0:
        return {name: Estimate(nan, nan, nan, 0) for name in stats}
    values = {name: float(stat(multiplicity[None, :])[0]) for name, stat in stats.items()}
    if n_boot <= 0:
        return {name: Estimate(v, nan, nan, n_units) for name, v in values.items()}
    rng = np.random.default_rng(seed)
    samples: dict[str, list[np.ndarray]] = {name: [] for name in stats}
    # Chunks of replicates keep the weight matrix near 2M entries (16 MB) whatever the number of rows.
    chunk = max(1, min(n_boot, 2_000_000 // len(multiplicity)))
    for start in range(0, n_boot, chunk):
        w = _bootstrap_weights(multiplicity, min(chunk, n_boot - start), rng)
        for name, stat in stats.items():
            samples[name].append(stat(w))
    out = {}
    for name, v in values.items():
        low, high = _percentile(np.concatenate(samples[name]), confidence)
        out[name] = Estimate(v, low, high, n_units)
    return out


def _estimate(
    stat: Callable[[np.ndarray], np.ndarray],
    multiplicity: np.ndarray,
    n_boot: int,
    confidence: float,
    seed: int,
) -> Estimate:
    return _estimates({"x": stat}, multiplicity, n_boot, confidence, seed)["x"]


# --------------------------------------------------------------------------------------------------------------
# Raw agreement


def pairable(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct count rows of the units with at least two ratings, and their multiplicities."""
    counts = np.asarray(counts, dtype=float)
    return distinct_rows(counts[counts.sum(axis=1) >= 2])


def _pairable_counts(ratings) -> tuple[np.ndarray, np.ndarray]:
    _, counts = unit_counts(ratings)
    return pairable(counts)


def raw_agreement(ratings, *, n_boot: int = 0, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Share of agreeing rater pairs within a unit, averaged over units with at least two ratings."""
    counts, mult = _pairable_counts(ratings)
    return _estimate(_raw_stat(counts), mult, n_boot, confidence, seed)


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


@dataclass(frozen=True)
class PairTables:
    """Contingency tables of rater pairs: ``tables[p, c, k]`` = units where ``rater_a[p]`` said value c and
    ``rater_b[p]`` value k (what SQL aggregates with a self-join of the judgments on the task)."""

    rater_a: np.ndarray
    rater_b: np.ndarray
    tables: np.ndarray  # (pairs, V, V)

    def __len__(self) -> int:
        return len(self.rater_a)


def _kappa_of_tables(tables: np.ndarray) -> np.ndarray:
    """Cohen's kappa of each (V, V) table in ``tables`` (any leading shape)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        n = tables.sum(axis=(-2, -1))
        p_o = np.trace(tables, axis1=-2, axis2=-1) / n
        pa = tables.sum(axis=-1) / n[..., None]
        pb = tables.sum(axis=-2) / n[..., None]
        p_e = (pa * pb).sum(axis=-1)
        kappa = (p_o - p_e) / (1.0 - p_e)
    # Both raters constant and equal: perfect agreement with no chance correction possible.
    return np.where(np.isclose(p_e, 1.0) & np.isclose(p_o, 1.0), 1.0, kappa)


def cohen_kappa_tables(
    tables: np.ndarray, *, n_boot: int = 0, confidence: float = 0.95, seed: int = 0
) -> list[Estimate]:
    """Cohen's kappa with a bootstrap interval for each (V, V) contingency table.

    The units of a pair are its shared tasks, each falling in one cell, so a bootstrap replicate of a pair is
    a multinomial draw over its cells; all pairs are drawn at once, in chunks that bound the memory."""
    tables = np.asarray(tables, dtype=float)
    nan = float("nan")
    n = tables.sum(axis=(1, 2)).round().astype(np.int64)
    values = _kappa_of_tables(tables)
    low = np.full(len(tables), nan)
    high = np.full(len(tables), nan)
    live = np.flatnonzero(n > 0)
    if n_boot > 0 and len(live):
        rng = np.random.default_rng(seed)
        cells = tables.shape[1] * tables.shape[2]
        tail = (1.0 - confidence) / 2.0 * 100.0
        chunk = max(1, 4_000_000 // (n_boot * cells))
        for start in range(0, len(live), chunk):
            idx = live[start : start + chunk]
            p = tables[idx].reshape(len(idx), cells) / n[idx, None]
            draws = rng.multinomial(n[idx], p, size=(n_boot, len(idx))).astype(float)
            kappa = _kappa_of_tables(draws.reshape(n_boot, len(idx), *tables.shape[1:]))
            kappa[~np.isfinite(kappa)] = np.nan
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a pair with no finite replicate: NaN
                lo, hi = np.nanpercentile(kappa, [tail, 100.0 - tail], axis=0)
            low[idx], high[idx] = lo, hi
    return [
        Estimate(float(values[i]) if n[i] else nan, float(low[i]), float(high[i]), int(n[i]))
        for i in range(len(tables))
    ]


def _table(ia: np.ndarray, ib: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(ia * k + ib, minlength=k * k).reshape(k, k).astype(float)


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
    table = _table(np.searchsorted(values, a), np.searchsorted(values, b), len(values))
    (est,) = cohen_kappa_tables(table[None], n_boot=n_boot, confidence=confidence, seed=seed)
    return est


def pair_tables_from_matrix(ratings, rater_ids: list, values: np.ndarray | None = None) -> PairTables:
    """Contingency tables of every pair of raters (columns) of a reliability matrix that share a unit."""
    m = _as_matrix(ratings)
    values, idx = _value_index(m, values)
    k = len(values)
    present = idx >= 0
    overlap = present.T.astype(int) @ present.astype(int)
    ra, rb, tables = [], [], []
    for i in range(m.shape[1]):
        for j in range(i + 1, m.shape[1]):
            if overlap[i, j] == 0:
                continue
            both = present[:, i] & present[:, j]
            ra.append(rater_ids[i])
            rb.append(rater_ids[j])
            tables.append(_table(idx[both, i], idx[both, j], k))
    return PairTables(np.array(ra), np.array(rb), np.array(tables).reshape(len(tables), k, k))


def cohen_kappa_pairs(
    pairs: PairTables, *, min_overlap: int = 10, n_boot: int = 0, confidence: float = 0.95, seed: int = 0
) -> list[dict]:
    """Cohen's kappa for every rater pair sharing at least ``min_overlap`` units, ordered by rater ids."""
    if len(pairs) == 0:
        return []
    n = pairs.tables.sum(axis=(1, 2))
    keep = np.flatnonzero(n >= min_overlap)
    keep = keep[np.lexsort((pairs.rater_b[keep], pairs.rater_a[keep]))]
    estimates = cohen_kappa_tables(pairs.tables[keep], n_boot=n_boot, confidence=confidence, seed=seed)
    return [
        {"rater_a": _plain(pairs.rater_a[p]), "rater_b": _plain(pairs.rater_b[p]), **est.as_dict()}
        for p, est in zip(keep, estimates, strict=True)
    ]


def _plain(x):
    return x.item() if isinstance(x, np.generic) else x


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
    pairs = pair_tables_from_matrix(m, rater_ids, np.unique(m[~np.isnan(m)]))
    return cohen_kappa_pairs(pairs, min_overlap=min_overlap, n_boot=n_boot, confidence=confidence, seed=seed)


# --------------------------------------------------------------------------------------------------------------
# Fleiss' kappa


def fleiss_kappa(ratings, *, n_boot: int = 0, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Fleiss' kappa (1971), generalised to a varying number of raters per unit.

    P_i = sum_j n_ij (n_ij - 1) / (n_i (n_i - 1)) per unit; P_bar = mean P_i; p_j = share of all ratings in
    category j; P_e = sum_j p_j^2; kappa = (P_bar - P_e) / (1 - P_e). With a constant n_i this is exactly
    Fleiss' statistic."""
    counts, mult = _pairable_counts(ratings)
    return _estimate(_fleiss_stat(counts), mult, n_boot, confidence, seed)


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


def _delta_squared_batch(values: np.ndarray, marginals: np.ndarray, level: str) -> np.ndarray:
    """:func:`_delta_squared` for each row of ``marginals`` (R, V) at once: (R, V, V)."""
    r, v = marginals.shape
    if level in ("nominal", "interval"):
        return np.broadcast_to(_delta_squared(values, np.zeros(v), level), (r, v, v))
    if level == "ordinal":
        cum = np.concatenate([np.zeros((r, 1)), np.cumsum(marginals, axis=1)], axis=1)
        lo = np.minimum.outer(np.arange(v), np.arange(v))
        hi = np.maximum.outer(np.arange(v), np.arange(v))
        between = cum[:, hi + 1] - cum[:, lo]
        return (between - (marginals[:, :, None] + marginals[:, None, :]) / 2.0) ** 2
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
    counts, mult = pairable(counts)
    return _estimate(_alpha_stat(counts, values, level), mult, n_boot, confidence, seed)


def _alpha_stat(counts: np.ndarray, values: np.ndarray, level: str) -> Callable[[np.ndarray], np.ndarray]:
    per_unit = unit_coincidences(counts).reshape(len(counts), len(values) ** 2)

    def stat(w: np.ndarray) -> np.ndarray:
        o = (w @ per_unit).reshape(len(w), len(values), len(values))
        n_c = o.sum(axis=2)
        n = n_c.sum(axis=1)
        d2 = _delta_squared_batch(values, n_c, level)  # (replicates, V, V)
        d_o = (o * d2).sum(axis=(1, 2))
        d_e = (n_c[:, :, None] * n_c[:, None, :] * d2).sum(axis=(1, 2))
        # alpha = 1 - D_o / D_e with D_o = d_o / n and D_e = d_e / (n (n - 1)).
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha = 1.0 - (n - 1.0) * d_o / d_e
        return np.where(d_e > 0, alpha, np.where(d_o == 0, 1.0, np.nan))

    return stat


NOMINAL_VALUES = np.arange(float(len(NOMINAL_CODES)))
ORDINAL_VALUES = np.arange(-3.0, 4.0)


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
    """:func:`agreement_from_counts` for a (units x raters) nominal and ordinal reliability matrix."""
    nominal = _as_matrix(nominal)
    values, nominal_counts = unit_counts(nominal)
    _, ordinal_counts = unit_counts(_as_matrix(ordinal), ORDINAL_VALUES)
    return agreement_from_counts(
        nominal_counts,
        ordinal_counts,
        pair_tables_from_matrix(nominal, rater_ids, values),
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        min_pair_overlap=min_pair_overlap,
        max_pair_boot=max_pair_boot,
    )


def agreement_from_counts(
    nominal_counts: np.ndarray,
    ordinal_counts: np.ndarray,
    pairs: PairTables,
    *,
    multiplicity: np.ndarray | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_pair_overlap: int = 10,
    max_pair_boot: int = 200,
) -> dict:
    """All agreement metrics for one group of units, each with a bootstrap interval, as plain data.

    ``nominal_counts`` (units x nominal values) and ``ordinal_counts`` (units x ``ORDINAL_VALUES``) are
    per-unit counts of each answer, one row per unit or, with ``multiplicity``, per distinct row (how many
    units share it). ``pairs`` holds the rater pairs' contingency tables for Cohen's kappa, which uses at most
    ``max_pair_boot`` replicates per pair: a project with 30 annotators has 435 pairs, and their intervals are
    a guide, not the headline number."""
    nominal_counts = np.asarray(nominal_counts, dtype=float)
    ordinal_counts = np.asarray(ordinal_counts, dtype=float)
    if multiplicity is not None:  # expand nothing: repeat rows by weight only through the multiplicities
        nominal_counts, n_mult = _merge_rows(nominal_counts, multiplicity)
        ordinal_counts, o_mult = _merge_rows(ordinal_counts, multiplicity)
    else:
        nominal_counts, n_mult = pairable(nominal_counts)
        ordinal_counts, o_mult = pairable(ordinal_counts)
    # Raw agreement, Fleiss and nominal alpha share the units (tasks with two or more answers) and therefore
    # the bootstrap replicates.
    nominal_values = np.arange(float(nominal_counts.shape[1]))
    shared = _estimates(
        {
            "raw_agreement": _raw_stat(nominal_counts),
            "fleiss_kappa": _fleiss_stat(nominal_counts),
            "krippendorff_alpha_nominal": _alpha_stat(nominal_counts, nominal_values, "nominal"),
        },
        n_mult,
        n_boot,
        confidence,
        seed,
    )
    ordinal = _estimate(
        _alpha_stat(ordinal_counts, ORDINAL_VALUES, "ordinal"), o_mult, n_boot, confidence, seed
    )
    return {
        **{name: est.as_dict() for name, est in shared.items()},
        "krippendorff_alpha_ordinal": ordinal.as_dict(),
        "cohen_kappa_pairs": cohen_kappa_pairs(
            pairs,
            min_overlap=min_pair_overlap,
            n_boot=min(n_boot, max_pair_boot),
            confidence=confidence,
            seed=seed,
        ),
    }


def _merge_rows(counts: np.ndarray, multiplicity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairable distinct rows of weighted count rows (rows may repeat, as when two groups are merged)."""
    multiplicity = np.asarray(multiplicity, dtype=float)
    keep = (counts.sum(axis=1) >= 2) & (multiplicity > 0)
    counts, multiplicity = counts[keep], multiplicity[keep]
    if len(counts) == 0:
        return counts, multiplicity
    rows, inverse = np.unique(counts, axis=0, return_inverse=True)
    return rows, np.bincount(inverse.ravel(), weights=multiplicity, minlength=len(rows))
