"""Chatbot-Arena style model leaderboard: Bradley-Terry maximum likelihood over pairwise judgments.

Model: P(i beats j) = sigmoid(theta_i - theta_j). Comparisons are first aggregated into counts per unordered
pair (i < j): ``wins[p]`` = wins of i over j, ``games[p]`` = comparisons; a tie (and "both bad") counts as half
a win for each side, as Chatbot Arena does. The fit is then over at most M(M-1)/2 pairs, not over rows, so a
million judgments cost one ``np.bincount``. Newton's method on the concave log-likelihood converges in a few
iterations; the sum-to-zero gauge (mean theta = 0) is enforced by projecting every step.

Elo-like scale: rating = 400 / ln(10) * theta + 1000, so a 400-point gap means 10:1 odds and the average model
sits at 1000.

Bootstrap: resample the comparisons (Poisson bootstrap: each comparison drawn Poisson(1) times, i.e. one
Poisson draw per aggregated (pair, outcome) cell) and refit from the point estimate.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

try:  # Many small batched solves run fastest on one BLAS thread; oversubscribed threads cost 10x.
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl is a declared dependency
    threadpool_limits = None

ELO_SCALE = 400.0 / np.log(10.0)
ELO_BASE = 1000.0


def one_blas_thread():
    """Run small dense solves on one BLAS thread: a 100x100 solve gains nothing from threads, and on a busy
    machine oversubscribed BLAS threads make it 10-50x slower (measured in benchmarks/leaderboard_bench.py)."""
    return threadpool_limits(limits=1, user_api="blas") if threadpool_limits else nullcontext()


def to_elo(theta: np.ndarray) -> np.ndarray:
    """Map centred Bradley-Terry strengths (natural-log odds) to the Elo-like scale."""
    return ELO_SCALE * np.asarray(theta) + ELO_BASE


@dataclass(frozen=True)
class PairCounts:
    """Comparisons aggregated per unordered pair (i < j)."""

    n_models: int
    i: np.ndarray  # first model of each pair
    j: np.ndarray  # second model of each pair
    wins_i: np.ndarray  # i's wins over j (ties count 0.5)
    games: np.ndarray  # comparisons of the pair
    # Per-pair outcome cells for the bootstrap: i wins, j wins, ties.
    cells: np.ndarray  # (pairs, 3)


def aggregate(
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    n_models: int,
    weight: np.ndarray | None = None,
) -> PairCounts:
    """Aggregate comparisons (index of model A, index of model B, outcome) into pair counts.

    ``outcome`` is 1 when A won, 0 when B won and 0.5 for a tie. Self-comparisons (a == b) are dropped.
    ``weight`` (default 1) is how many comparisons each row stands for, when they come already counted."""
    a = np.asarray(model_a, dtype=np.int64)
    b = np.asarray(model_b, dtype=np.int64)
    y = np.asarray(outcome, dtype=float)
    w = np.ones(len(a)) if weight is None else np.asarray(weight, dtype=float)
    keep = a != b
    a, b, y, w = a[keep], b[keep], y[keep], w[keep]
    swap = a > b
    lo = np.where(swap, b, a)
    hi = np.where(swap, a, b)
    y_lo = np.where(swap, 1.0 - y, y)  # outcome from the point of view of the lower index
    cell = np.where(y_lo == 1.0, 0, np.where(y_lo == 0.0, 1, 2))
    key = (lo * n_models + hi) * 3 + cell
    flat = np.bincount(key, weights=w, minlength=n_models * n_models * 3).reshape(n_models * n_models, 3)
    pair_keys = np.flatnonzero(flat.sum(axis=1))
    cells = flat[pair_keys].astype(float)
    return PairCounts(
        n_models=n_models,
        i=pair_keys // n_models,
        j=pair_keys % n_models,
        wins_i=cells[:, 0] + 0.5 * cells[:, 2],
        games=cells.sum(axis=1),
        cells=cells,
    )


def log_likelihood(theta: np.ndarray, counts: PairCounts, l2: float = 0.0) -> float:
    d = theta[counts.i] - theta[counts.j]
    # log sigmoid(d) = -logaddexp(0, -d)
    ll = -(
        counts.wins_i * np.logaddexp(0.0, -d) + (counts.games - counts.wins_i) * np.logaddexp(0.0, d)
    ).sum()
    return float(ll - 0.5 * l2 * (theta**2).sum())


def fit_bradley_terry(
    counts: PairCounts,
    *,
    l2: float = 0.0,
    theta0: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> np.ndarray:
    """Maximum-likelihood strengths (mean 0) by Newton's method on the aggregated pair counts.

    ``l2`` adds a Gaussian prior 0.5 * l2 * |theta|^2 that keeps strengths finite when a model never loses or
    the comparison graph is not connected; 0 is plain maximum likelihood. Models with no comparisons stay at 0
    (with a prior) or at their starting value."""
    with one_blas_thread():
        theta = fit_bradley_terry_batch(
            counts,
            wins_i=counts.wins_i[None, :],
            games=counts.games[None, :],
            l2=l2,
            theta0=None if theta0 is None else np.asarray(theta0, dtype=float)[None, :],
            tol=tol,
            max_iter=max_iter,
        )
    return theta[0]


def fit_bradley_terry_batch(
    counts: PairCounts,
    *,
    wins_i: np.ndarray,
    games: np.ndarray,
    l2: float = 0.0,
    theta0: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> np.ndarray:
    """Newton's method for B fits at once: ``wins_i``/``games`` are (B, pairs) over the pairs of ``counts``
    (the bootstrap passes resampled counts); returns (B, m) strengths with mean 0 per row."""
    m = counts.n_models
    ii, jj = counts.i, counts.j
    n_fits = wins_i.shape[0]
    theta = np.zeros((n_fits, m)) if theta0 is None else np.array(theta0, dtype=float)
    # Incidence matrix (pairs x models): +1 at i, -1 at j. grad = r @ inc sums each pair's residual into both.
    inc = np.zeros((len(ii), m))
    inc[np.arange(len(ii)), ii] = 1.0
    inc[np.arange(len(jj)), jj] = -1.0
    abs_inc = np.abs(inc)
    diag_idx = np.arange(m)
    for _ in range(max_iter):
        p = expit(theta[:, ii] - theta[:, jj])
        r = wins_i - games * p  # d loglik / d theta_i per pair
        grad = r @ inc - l2 * theta
        h = games * p * (1.0 - p)
        # Negative Hessian: a weighted graph Laplacian (+ prior). The 1-vector is its null space without a
        # prior; adding 11^T/m fixes the gauge, and grad is orthogonal to 1 so the step keeps mean theta.
        hess = np.full((n_fits, m, m), 1.0 / m)
        hess[:, ii, jj] -= h
        hess[:, jj, ii] -= h
        hess[:, diag_idx, diag_idx] += (h @ abs_inc) + l2 + 1e-12
        step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        theta += step
        theta -= theta.mean(axis=1, keepdims=True)
        if np.max(np.abs(step)) < tol:
            break
    return theta


def win_rate_matrix(counts: PairCounts) -> tuple[np.ndarray, np.ndarray]:
    """Empirical win rates W[i, j] = share of i's comparisons with j that i won (ties half) and the game
    counts G[i, j]; NaN where a pair never met."""
    m = counts.n_models
    games = np.zeros((m, m))
    wins = np.zeros((m, m))
    games[counts.i, counts.j] = counts.games
    games[counts.j, counts.i] = counts.games
    wins[counts.i, counts.j] = counts.wins_i
    wins[counts.j, counts.i] = counts.games - counts.wins_i
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(games > 0, wins / games, np.nan)
    return rate, games


def predicted_win_rate(theta: np.ndarray) -> np.ndarray:
    return expit(theta[:, None] - theta[None, :])


def bootstrap_bradley_terry(
    counts: PairCounts,
    theta_hat: np.ndarray,
    *,
    n_boot: int = 1000,
    l2: float = 0.0,
    seed: int = 0,
    chunk: int = 100,
) -> np.ndarray:
    """(n_boot, m) strengths refitted on resampled comparisons: the Poisson bootstrap, in which every
    comparison is drawn Poisson(1) times. A sum of c independent Poisson(1) draws is Poisson(c), so a replicate
    is one Poisson draw per (pair, outcome) cell, which costs a third of the equivalent multinomial (fixed-N)
    row resample and agrees with it to O(1/N). Fits run ``chunk`` replicates at a time (batched Newton,
    warm-started at ``theta_hat``)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, counts.n_models))
    with one_blas_thread():
        _bootstrap_chunks(counts, theta_hat, rng, out, l2=l2, chunk=chunk)
    return out


def _bootstrap_chunks(counts: PairCounts, theta_hat, rng, out: np.ndarray, *, l2: float, chunk: int) -> None:
    flat = counts.cells.ravel()
    n_boot = len(out)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        c = rng.poisson(flat, size=(size, len(flat))).reshape(size, -1, 3).astype(float)
        out[start : start + size] = fit_bradley_terry_batch(
            counts,
            wins_i=c[:, :, 0] + 0.5 * c[:, :, 2],
            games=c.sum(axis=2),
            l2=l2,
            theta0=np.repeat(theta_hat[None, :], size, axis=0),
            tol=1e-6,
        )


@dataclass(frozen=True)
class Leaderboard:
    models: list[str]
    theta: np.ndarray
    rating: np.ndarray
    low: np.ndarray
    high: np.ndarray
    games: np.ndarray  # per model
    wins: np.ndarray  # per model (ties half)
    win_rate: np.ndarray  # (m, m) empirical
    pair_games: np.ndarray  # (m, m)
    n_comparisons: int

    def as_dict(self) -> dict:
        order = np.argsort(-self.rating)

        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else round(float(x), 4)

        return {
            "n_comparisons": self.n_comparisons,
            "scale": {"elo_per_logit": ELO_SCALE, "base": ELO_BASE},
            "models": [
                {
                    "rank": rank + 1,
                    "model": self.models[k],
                    "rating": num(self.rating[k]),
                    "low": num(self.low[k]),
                    "high": num(self.high[k]),
                    "strength": num(self.theta[k]),
                    "games": int(self.games[k]),
                    "wins": num(self.wins[k]),
                }
                for rank, k in enumerate(order)
            ],
            "order": [self.models[k] for k in order],
            "win_rate": [[num(self.win_rate[a, b]) for b in order] for a in order],
            "pair_games": [[int(self.pair_games[a, b]) for b in order] for a in order],
        }


def leaderboard(
    model_a: list[str] | np.ndarray,
    model_b: list[str] | np.ndarray,
    outcome: np.ndarray,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    l2: float = 0.0,
    seed: int = 0,
    weight: np.ndarray | None = None,
) -> Leaderboard:
    """Fit a leaderboard from comparisons given as model names and outcomes (1 A won, 0 B won, 0.5 tie);
    ``weight`` is how many comparisons each row stands for (rows already counted by SQL)."""
    names, inverse = np.unique(
        np.concatenate([np.asarray(model_a), np.asarray(model_b)]), return_inverse=True
    )
    n = len(model_a)
    counts = aggregate(inverse[:n], inverse[n:], outcome, len(names), weight=weight)
    theta = fit_bradley_terry(counts, l2=l2)
    rating = to_elo(theta)
    if n_boot > 0 and len(counts.games):
        boot = to_elo(bootstrap_bradley_terry(counts, theta, n_boot=n_boot, l2=l2, seed=seed))
        tail = (1.0 - confidence) / 2.0 * 100.0
        low, high = np.percentile(boot, [tail, 100.0 - tail], axis=0)
    else:
        low = high = np.full(len(names), np.nan)
    rate, pair_games = win_rate_matrix(counts)
    wins = np.bincount(counts.i, counts.wins_i, minlength=len(names)) + np.bincount(
        counts.j, counts.games - counts.wins_i, minlength=len(names)
    )
    return Leaderboard(
        models=[str(x) for x in names],
        theta=theta,
        rating=rating,
        low=low,
        high=high,
        games=pair_games.sum(axis=1),
        wins=wins,
        win_rate=rate,
        pair_games=pair_games,
        n_comparisons=int(counts.games.sum()),
    )
