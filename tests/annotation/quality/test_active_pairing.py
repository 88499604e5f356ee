"""Active pairing maths against hand-computed values and brute-force recomputation."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.quality import active_pairing as ap
from annotation.quality.leaderboard import aggregate, fit_bradley_terry


def test_two_models_no_votes_gain_is_one_third_by_hand():
    # prior 1: S = I, w = 1/4, x = (1, -1): x^T S x = 2, |S x|^2 = 2 -> gain = (1/4 * 2) / (1 + 1/4 * 2) = 1/3.
    # By hand the other way: F' = [[1.25, -.25], [-.25, 1.25]], trace(F'^-1) = 2.5 / 1.5 = 5/3; 2 - 5/3 = 1/3.
    cov = ap.covariance(np.zeros(2), np.zeros((2, 2)), prior=1.0)
    np.testing.assert_allclose(cov, np.eye(2))
    gain = ap.variance_reduction(np.zeros(2), cov)
    assert gain[0, 1] == pytest.approx(1.0 / 3.0)
    assert gain[0, 0] == 0.0


def test_gain_equals_brute_force_trace_drop():
    rng = np.random.default_rng(3)
    m = 6
    theta = rng.normal(size=m)
    games = np.triu(rng.integers(0, 20, size=(m, m)), 1).astype(float)
    games = games + games.T
    cov = ap.covariance(theta, games, prior=0.1)
    gain = ap.variance_reduction(theta, cov)
    for i, j in [(0, 1), (2, 5), (3, 4)]:
        more = games.copy()
        more[i, j] += 1
        more[j, i] += 1
        drop = np.trace(cov) - np.trace(ap.covariance(theta, more, prior=0.1))
        assert gain[i, j] == pytest.approx(drop, rel=1e-8)


def test_unseen_model_is_paired_first():
    # Models 0 and 1 have met 100 times; model 2 never played: every best pair involves model 2.
    games = np.zeros((3, 3))
    games[0, 1] = games[1, 0] = 100
    gain = ap.variance_reduction(np.zeros(3), ap.covariance(np.zeros(3), games))
    assert gain[0, 2] > gain[0, 1] and gain[1, 2] > gain[0, 1]


def test_close_pair_beats_lopsided_pair_by_hand():
    # No data, prior 0.05: S = 20 I, so x^T S x = 40 and |S x|^2 = 800 for every pair. Model 2 is 5 logits
    # stronger: w = sigmoid(5) sigmoid(-5) = 0.006648 against 0.25 for the close pair (0, 1).
    # gain(0, 1) = 0.25 * 800 / (1 + 0.25 * 40) = 18.18; gain(0, 2) = 0.006648 * 800 / (1 + 0.006648 * 40) = 4.20.
    theta = np.array([0.0, 0.0, 5.0])
    gain = ap.variance_reduction(theta, ap.covariance(theta, np.zeros((3, 3))))
    w = 1 / (1 + np.exp(-5.0)) * (1 / (1 + np.exp(5.0)))
    assert gain[0, 1] == pytest.approx(200 / 11)
    assert gain[0, 2] == pytest.approx(w * 800 / (1 + w * 40))
    assert gain[0, 1] > 4 * gain[0, 2]


def test_batch_spreads_over_pairs_instead_of_piling_on_one():
    picks = ap.choose_pairs(np.zeros(3), np.zeros((3, 3)), 3, rng=np.random.default_rng(0), exploration=0.0)
    assert sorted(picks) == [(0, 1), (0, 2), (1, 2)]


def test_exploration_one_is_uniform_over_pairs():
    picks = ap.choose_pairs(
        np.array([0.0, 0.0, 9.0, 9.0]), np.zeros((4, 4)), 6000, rng=np.random.default_rng(1), exploration=1.0
    )
    counts = {p: picks.count(p) for p in set(picks)}
    assert len(counts) == 6
    assert all(900 < c < 1100 for c in counts.values())


def test_greedy_still_links_two_groups_nothing_else_compares():
    # Two groups 9 logits apart and no data: the offset between the groups is known only through cross votes,
    # so A-optimality spends on them although each informs little (the sum of variances is dominated by it).
    picks = ap.choose_pairs(
        np.array([0.0, 0.0, 9.0, 9.0]), np.zeros((4, 4)), 200, rng=np.random.default_rng(1), exploration=0.0
    )
    cross = sum(1 for a, b in picks if (a < 2) != (b < 2))
    assert 0 < 200 - cross < cross


def test_pair_priorities_use_the_leaderboard_fit_and_cover_unvoted_models():
    a = ["x", "x", "y", "y", "x"]
    b = ["y", "y", "x", "x", "y"]
    out = np.array([1, 1, 0, 1, 0.5])
    pri = ap.pair_priorities(a, b, out, models=["x", "y", "z"])
    idx = {"x": 0, "y": 1}
    counts = aggregate([idx[v] for v in a], [idx[v] for v in b], out, 3)
    np.testing.assert_allclose(pri.theta, fit_bradley_terry(counts, l2=ap.DEFAULT_PRIOR), atol=1e-9)
    assert set(pri.priority) == {("x", "y"), ("x", "z"), ("y", "z")}
    assert max(pri.priority.values()) == pytest.approx(1.0)
    assert pri.priority[("x", "y")] < pri.priority[("x", "z")]  # z was never compared


def test_validate_strategy_messages():
    assert ap.validate_strategy("active", 0.1) == {}
    assert ap.validate_strategy("uniform", 0) == {}
    assert "Unknown pairing strategy 'elo'" in ap.validate_strategy("elo", 0.1)["pairing_strategy"]
    assert ap.validate_strategy("active", 1.5) == {
        "exploration": "The exploration share must be a number in [0, 1]."
    }
    assert set(ap.validate_strategy("x", "0.5")) == {"pairing_strategy", "exploration"}


def test_batch_rank_one_updates_match_a_fresh_inverse():
    # After a greedy batch, the next pick must equal the pick from a fresh covariance with those votes added.
    rng = np.random.default_rng(5)
    theta = rng.normal(size=5)
    games = np.zeros((5, 5))
    picks = ap.choose_pairs(theta, games, 7, rng=np.random.default_rng(0), exploration=0.0)
    for a, b in picks[:6]:
        games[a, b] += 1
        games[b, a] += 1
    gain = ap.variance_reduction(theta, ap.covariance(theta, games))
    iu, ju = np.triu_indices(5, k=1)
    k = int(np.argmax(gain[iu, ju]))
    assert picks[6] == (int(iu[k]), int(ju[k]))


def test_ranking_weights_by_hand_and_rank_one_updates_stay_exact():
    # theta order 1 > 2 > 0: neighbours (1, 2) and (2, 0); top=1 keeps (1, 2) only.
    m = ap.adjacent_rank_weights(np.array([0.0, 2.0, 1.0]), top=1)
    np.testing.assert_array_equal(m, [[0, 0, 0], [0, 1, -1], [0, -1, 1]])
    full = ap.adjacent_rank_weights(np.array([0.0, 2.0, 1.0]))
    np.testing.assert_array_equal(full, [[1, 0, -1], [0, 1, -1], [-1, -1, 2]])
    # After a weighted greedy batch, the next pick equals the argmax from a fresh covariance.
    rng = np.random.default_rng(2)
    theta = rng.normal(size=6)
    weights = ap.adjacent_rank_weights(theta, top=3)
    games = np.zeros((6, 6))
    picks = ap.choose_pairs(theta, games, 9, rng=np.random.default_rng(0), exploration=0.0, weights=weights)
    for a, b in picks[:8]:
        games[a, b] += 1
        games[b, a] += 1
    cov = ap.covariance(theta, games)
    gain = ap.variance_reduction(theta, cov, cov @ weights @ cov)
    iu, ju = np.triu_indices(6, k=1)
    k = int(np.argmax(gain[iu, ju]))
    assert picks[8] == (int(iu[k]), int(ju[k]))
