"""Active pairing for model leaderboards: which pair of models to compare next so the Bradley-Terry
intervals shrink fastest.

Model: the strengths are fitted by ``annotation.quality.leaderboard.fit_bradley_terry``. Their precision is the
Fisher information of that fit, a weighted graph Laplacian F = sum_pairs n_ij p_ij (1 - p_ij) x x^T with
x = e_i - e_j, plus a weak Gaussian prior ``prior * I`` (so models nobody has compared yet have a finite,
large variance instead of an infinite one). The covariance is S = (F + prior I)^-1. One more comparison of
(i, j) adds w x x^T with w = p_ij (1 - p_ij); by Sherman-Morrison the total variance trace(S) then drops by

    gain_ij = w |S x|^2 / (1 + w x^T S x)

which for all pairs at once needs only S and S^2 (|S x|^2 = S2_ii + S2_jj - 2 S2_ij). The strategy serves the
pair with the largest gain, except for a share ``exploration`` of picks drawn uniformly over all pairs (the
floor that keeps every pair's win rate observed, so a wrong early fit cannot starve a pair forever). A batch of
picks is chosen greedily: after each pick S is updated by the same rank-one formula (O(m^2)), so a batch does
not pile onto one pair while the fit is refreshed only once per batch.

Why this design: it is the D/A-optimal design criterion of the logistic model (A-optimality: trace of the
covariance, i.e. the sum of the squared interval widths), which is what a leaderboard reader looks at; it costs
one m x m inverse per refit (m = 100: a fraction of a millisecond) and needs no sampling. Pure numpy; no
Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from annotation.quality.leaderboard import PairCounts, aggregate, fit_bradley_terry, one_blas_thread

STRATEGIES = ("uniform", "active")
DEFAULT_EXPLORATION = 0.1
# Prior precision on each strength (logit units): sd 1/sqrt(0.05) = 4.5 logits = 1,950 Elo points, i.e.
# "nothing known" on the scale of any real leaderboard, yet finite for a model never compared.
DEFAULT_PRIOR = 0.05


def validate_strategy(name: str, exploration: float) -> dict[str, str]:
    """Problems with a pairing setting: {"pairing_strategy" or "exploration": message}; empty when valid."""
    errors = {}
    if name not in STRATEGIES:
        errors["pairing_strategy"] = (
            f"Unknown pairing strategy {name!r}; choose one of {', '.join(STRATEGIES)}."
        )
    if isinstance(exploration, bool) or not isinstance(exploration, int | float) or not 0 <= exploration <= 1:
        errors["exploration"] = "The exploration share must be a number in [0, 1]."
    return errors


def games_matrix(counts: PairCounts) -> np.ndarray:
    """Symmetric (m, m) comparison counts from aggregated pair counts."""
    g = np.zeros((counts.n_models, counts.n_models))
    g[counts.i, counts.j] = counts.games
    g[counts.j, counts.i] = counts.games
    return g


def covariance(theta: np.ndarray, games: np.ndarray, *, prior: float = DEFAULT_PRIOR) -> np.ndarray:
    """Approximate covariance of the strengths: the inverse of the Fisher information plus the prior."""
    theta = np.asarray(theta, dtype=float)
    p = expit(theta[:, None] - theta[None, :])
    w = np.asarray(games, dtype=float) * p * (1.0 - p)
    np.fill_diagonal(w, 0.0)
    info = np.diag(w.sum(axis=1)) - w + prior * np.eye(len(theta))
    with one_blas_thread():
        return np.linalg.inv(info)


def variance_reduction(theta: np.ndarray, cov: np.ndarray, cov2: np.ndarray | None = None) -> np.ndarray:
    """(m, m) expected drop of the total variance trace(cov) from one more comparison of each pair; the
    diagonal is 0 (a model is never compared with itself). ``cov2`` is cov @ cov when the caller has it."""
    theta = np.asarray(theta, dtype=float)
    p = expit(theta[:, None] - theta[None, :])
    return _gain(p * (1.0 - p), cov, _square(cov) if cov2 is None else cov2)


def _square(cov: np.ndarray) -> np.ndarray:
    with one_blas_thread():
        return cov @ cov


def _gain(w: np.ndarray, cov: np.ndarray, cov2: np.ndarray) -> np.ndarray:
    d = np.diag(cov)
    xsx = d[:, None] + d[None, :] - 2.0 * cov  # x^T S x for x = e_i - e_j
    d2 = np.diag(cov2)
    sx2 = d2[:, None] + d2[None, :] - 2.0 * cov2  # |S x|^2
    gain = w * sx2 / (1.0 + w * xsx)
    np.fill_diagonal(gain, 0.0)
    return np.maximum(gain, 0.0)


def choose_pairs(
    theta: np.ndarray,
    games: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
    exploration: float = DEFAULT_EXPLORATION,
    prior: float = DEFAULT_PRIOR,
    weights: np.ndarray | None = None,
) -> list[tuple[int, int]]:
    """The next ``n`` pairs (i < j) to compare: greedy largest variance reduction, each pick drawn uniformly
    over all pairs with probability ``exploration``. ``theta`` is the current fit, ``games`` the symmetric
    comparison counts so far. Each pick updates S and S M S by rank-one formulas (O(m^2), no new inverse).

    ``weights`` M (m x m, positive semi-definite) changes the target from trace(S) (every interval) to
    trace(M S): e.g. ``adjacent_rank_weights`` targets the differences between neighbours in the ranking,
    which is what decides whether the order is right. The gain is then w x^T S M S x / (1 + w x^T S x)."""
    m = len(theta)
    if m < 2:
        return []
    theta = np.asarray(theta, dtype=float)
    cov = covariance(theta, games, prior=prior)
    cov2 = _square(cov) if weights is None else cov @ weights @ cov
    p = expit(theta[:, None] - theta[None, :])
    w_all = p * (1.0 - p)
    iu, ju = np.triu_indices(m, k=1)
    picks: list[tuple[int, int]] = []
    for _ in range(n):
        if rng.random() < exploration:
            k = int(rng.integers(len(iu)))
        else:
            gain = _gain(w_all, cov, cov2)[iu, ju]
            best = np.flatnonzero(gain >= gain.max() * (1.0 - 1e-9))
            k = int(best[rng.integers(len(best))])
        a, b = int(iu[k]), int(ju[k])
        picks.append((a, b))
        # Sherman-Morrison for the comparison just planned: S' = S - c u u^T with u = S x, and
        # S'MS' = SMS - c (u v^T + v u^T) + c^2 (u^T M u) u u^T with v = S M u = (S M S) x.
        w = w_all[a, b]
        u = cov[:, a] - cov[:, b]
        c = w / (1.0 + w * (u[a] - u[b]))
        v = cov2[:, a] - cov2[:, b]
        uu = np.outer(u, u)
        uv = np.outer(u, v)
        umu = float(u @ u) if weights is None else float(u @ weights @ u)
        cov2 = cov2 - c * (uv + uv.T) + (c * c * umu) * uu
        cov = cov - c * uu
    return picks


def adjacent_rank_weights(theta: np.ndarray, top: int | None = None) -> np.ndarray:
    """M = sum of d d^T over neighbours in the fitted ranking (d = e_r - e_(r+1)), for the first ``top``
    places and the boundary below them (all places when None): trace(M S) is the summed variance of the
    neighbour differences."""
    order = np.argsort(-np.asarray(theta, dtype=float))
    last = len(order) - 1 if top is None else min(top, len(order) - 1)
    m = np.zeros((len(order), len(order)))
    for r in range(last):
        a, b = order[r], order[r + 1]
        m[a, a] += 1.0
        m[b, b] += 1.0
        m[a, b] -= 1.0
        m[b, a] -= 1.0
    return m


@dataclass(frozen=True)
class PairPriorities:
    """Per pair (i < j) of ``models``: the variance reduction of one more vote, scaled to [0, 1] (1: the
    most useful pair now). ``theta`` is the fit they come from."""

    models: list[str]
    theta: np.ndarray
    priority: dict[tuple[str, str], float]


def pair_priorities(
    model_a: list[str],
    model_b: list[str],
    outcome: np.ndarray,
    *,
    models: list[str],
    weight: np.ndarray | None = None,
    prior: float = DEFAULT_PRIOR,
) -> PairPriorities:
    """Fit the leaderboard's Bradley-Terry model to the votes so far and score every pair of ``models``
    (including models with no votes yet) by the variance reduction of its next vote. ``weight``: how many
    judgments each row stands for (rows counted in SQL). Keys are name pairs in the order of ``models``."""
    index = {name: k for k, name in enumerate(models)}
    a = np.array([index[x] for x in model_a], dtype=np.int64)
    b = np.array([index[x] for x in model_b], dtype=np.int64)
    counts = aggregate(a, b, np.asarray(outcome, dtype=float), len(models), weight=weight)
    theta = fit_bradley_terry(counts, l2=prior) if len(counts.games) else np.zeros(len(models))
    gain = variance_reduction(theta, covariance(theta, games_matrix(counts), prior=prior))
    top = gain.max() or 1.0
    out = {
        (models[i], models[j]): float(gain[i, j] / top)
        for i in range(len(models))
        for j in range(i + 1, len(models))
    }
    return PairPriorities(models=list(models), theta=theta, priority=out)
