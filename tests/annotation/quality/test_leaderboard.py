"""Bradley-Terry leaderboard: aggregation, the fit against an independent logistic regression, bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from annotation.quality.leaderboard import (
    ELO_SCALE,
    aggregate,
    fit_bradley_terry,
    leaderboard,
    log_likelihood,
    to_elo,
    win_rate_matrix,
)


def _synthetic(n_models: int, n: int, seed: int = 0, tie_rate: float = 0.1):
    rng = np.random.default_rng(seed)
    true = rng.normal(0.0, 1.0, n_models)
    a = rng.integers(0, n_models, n)
    b = (a + rng.integers(1, n_models, n)) % n_models  # never a self-comparison
    p = expit(true[a] - true[b])
    y = (rng.random(n) < p).astype(float)
    y[rng.random(n) < tie_rate] = 0.5
    return true, a, b, y


def _reference_logistic_regression(a, b, y, n_models, l2=0.0):
    """An independent fit: row-level logistic regression, no aggregation, model 0 as the fixed reference
    (theta_0 = 0, the other m-1 coefficients free), ties as two half-weighted rows, scipy BFGS."""
    x = np.zeros((len(a), n_models))
    x[np.arange(len(a)), a] += 1.0
    x[np.arange(len(b)), b] -= 1.0
    x = x[:, 1:]
    rows = np.concatenate([x, x])
    target = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    weight = np.concatenate([y, 1.0 - y])

    def nll(beta):
        z = rows @ beta
        loss = -(weight * np.where(target == 1, log_expit(z), log_expit(-z))).sum()
        full = np.concatenate([[0.0], beta])
        return loss + 0.5 * l2 * (full - full.mean()) @ (full - full.mean())

    def grad(beta):
        z = rows @ beta
        g = -(rows.T @ (weight * (target - expit(z))))
        full = np.concatenate([[0.0], beta])
        centred = full - full.mean()
        return g + l2 * centred[1:]

    res = minimize(
        nll, np.zeros(n_models - 1), jac=grad, method="BFGS", options={"gtol": 1e-10, "maxiter": 5000}
    )
    theta = np.concatenate([[0.0], res.x])
    return theta - theta.mean()


def test_fit_matches_independent_logistic_regression():
    true, a, b, y = _synthetic(8, 4000, seed=3)
    counts = aggregate(a, b, y, 8)
    theta = fit_bradley_terry(counts)
    reference = _reference_logistic_regression(a, b, y, 8)
    assert np.max(np.abs(theta - reference)) < 1e-3
    assert np.max(np.abs(to_elo(theta) - to_elo(reference))) < 1e-3 * ELO_SCALE
    assert abs(theta.mean()) < 1e-12
    # And it recovers the generating strengths up to sampling noise.
    assert np.corrcoef(theta, true - true.mean())[0, 1] > 0.98


def test_aggregation_counts_ties_half_and_orientation():
    # model 0 vs 1: 0 wins as A, 1 wins as A (so 0 loses as B), a tie; model 2 vs 0 once, 2 wins.
    a = np.array([0, 1, 0, 2, 1])
    b = np.array([1, 0, 1, 0, 1])  # last row is a self-comparison and is dropped
    y = np.array([1.0, 1.0, 0.5, 1.0, 1.0])
    counts = aggregate(a, b, y, 3)
    pairs = {
        (int(i), int(j)): (w, n)
        for i, j, w, n in zip(counts.i, counts.j, counts.wins_i, counts.games, strict=True)
    }
    assert pairs == {(0, 1): (1.5, 3.0), (0, 2): (0.0, 1.0)}
    rate, games = win_rate_matrix(counts)
    assert rate[0, 1] == pytest.approx(0.5) and rate[2, 0] == pytest.approx(1.0)
    assert games[1, 0] == 3 and np.isnan(rate[1, 2])


def test_fit_is_the_maximum_of_the_likelihood():
    _, a, b, y = _synthetic(5, 600, seed=1)
    counts = aggregate(a, b, y, 5)
    theta = fit_bradley_terry(counts)
    best = log_likelihood(theta, counts)
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert log_likelihood(theta + rng.normal(0, 0.05, 5), counts) < best + 1e-9


def test_l2_prior_keeps_an_undefeated_model_finite_and_matches_reference():
    # Model 0 never loses: plain ML diverges; the prior gives a finite, top-ranked strength.
    a = np.array([0] * 30 + [1] * 30 + [2] * 10)
    b = np.array([1] * 30 + [2] * 30 + [1] * 10)
    y = np.array([1.0] * 30 + [1.0] * 20 + [0.0] * 10 + [1.0] * 10)
    counts = aggregate(a, b, y, 3)
    theta = fit_bradley_terry(counts, l2=0.1)
    assert np.all(np.isfinite(theta)) and theta.argmax() == 0
    reference = _reference_logistic_regression(a, b, y, 3, l2=0.1)
    assert np.max(np.abs(theta - reference)) < 1e-3


def test_leaderboard_orders_models_with_bootstrap_intervals():
    names = np.array(["weak", "mid", "strong"])
    rng = np.random.default_rng(5)
    strength = np.array([-1.0, 0.0, 1.0])
    a = rng.integers(0, 3, 3000)
    b = (a + rng.integers(1, 3, 3000)) % 3
    y = (rng.random(3000) < expit(strength[a] - strength[b])).astype(float)
    board = leaderboard(names[a], names[b], y, n_boot=200, seed=0)
    out = board.as_dict()
    assert out["order"] == ["strong", "mid", "weak"]
    assert out["n_comparisons"] == 3000
    for row in out["models"]:
        assert row["low"] < row["rating"] < row["high"]
        assert row["high"] - row["low"] < 80  # 1,000 games a model pins the rating down to tens of points
    ratings = [row["rating"] for row in out["models"]]
    assert np.mean(ratings) == pytest.approx(1000.0, abs=1e-3)
    # 1 logit apart is about 174 Elo points.
    assert ratings[0] - ratings[1] == pytest.approx(ELO_SCALE, rel=0.15)
    assert sum(row["games"] for row in out["models"]) == 2 * 3000
