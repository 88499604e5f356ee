"""Per-annotator statistics on hand-made vote tables."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.quality.annotators import (
    Votes,
    annotator_stats,
    bernoulli_cusum,
    drift_test,
    loo_consensus_agreement,
    position_bias,
    repeat_pairs,
)


def _rows(spec):
    return Votes.from_rows([dict(zip(("id", "task", "annotator", "choice"), r, strict=True)) for r in spec])


def test_leave_one_out_consensus():
    votes = _rows(
        [
            (1, 10, 1, "A"),
            (2, 10, 2, "A"),
            (3, 10, 3, "B"),  # others say A, A -> disagrees
            (4, 11, 1, "A"),
            (5, 11, 2, "B"),  # on task 11 each sees one other vote, which differs
            (6, 12, 1, "tie"),  # alone on its task -> unknown
        ]
    )
    loo = loo_consensus_agreement(votes)
    # For vote 1 the others are (A, B): no strict majority -> NaN.
    assert np.isnan(loo[0]) and np.isnan(loo[1]) and loo[2] == 0.0
    assert loo[3] == 0.0 and loo[4] == 0.0 and np.isnan(loo[5])


def test_repeat_consistency_mirrors_a_and_b():
    votes = Votes.from_rows(
        [
            {"id": 1, "task": 1, "annotator": 7, "choice": "A"},
            {"id": 2, "task": 2, "annotator": 7, "choice": "B", "repeat_of": 1},  # consistent (swapped)
            {"id": 3, "task": 3, "annotator": 7, "choice": "tie"},
            {"id": 4, "task": 4, "annotator": 7, "choice": "A", "repeat_of": 3},  # inconsistent
            {"id": 5, "task": 5, "annotator": 8, "choice": "A", "repeat_of": 1},  # 8 never saw task 1
        ]
    )
    assert repeat_pairs(votes) == [(7, 2, True), (7, 4, False)]


def test_position_bias_binomial_test():
    fair = position_bias(52, 48)
    assert fair["share_a"] == pytest.approx(0.52) and fair["p_value"] > 0.5
    biased = position_bias(90, 10)
    assert biased["p_value"] < 1e-15
    # Exact two-sided binomial: P(X >= 8 or X <= 2 | n=10, p=1/2) = 112/1024.
    assert position_bias(8, 2)["p_value"] == pytest.approx(112 / 1024)
    assert position_bias(0, 0)["share_a"] is None


def test_annotator_stats_columns():
    rows = []
    for k in range(10):
        rows.append(
            {
                "id": k,
                "task": k,
                "annotator": 1,
                "choice": "A" if k < 6 else ("tie" if k < 8 else "B"),
                "gold": "A" if k < 4 else "",
                "time_ms": 1000 if k < 3 else 9000,
                "day": "2026-01-01" if k < 4 else "2026-01-02",
            }
        )
    (s,) = annotator_stats(Votes.from_rows(rows), fast_ms=2000)
    assert s.n == 10 and s.gold_n == 4 and s.gold_accuracy == 1.0
    assert s.share_a == pytest.approx(6 / 8) and s.tie_rate == pytest.approx(0.2)
    assert s.fast_share == pytest.approx(0.3) and s.median_time_ms == 9000
    assert s.daily_volume == {"2026-01-01": 4, "2026-01-02": 6}


def test_cusum_alarms_on_a_drop_and_not_on_a_steady_rate():
    rng = np.random.default_rng(0)
    steady = (rng.random(300) < 0.9).astype(float)
    dropped = np.concatenate([(rng.random(200) < 0.9), (rng.random(100) < 0.4)]).astype(float)
    assert not drift_test(steady)["drift"]
    result = drift_test(dropped)
    assert result["drift"] and result["recent"] < 0.6 and result["baseline"] > 0.85
    # The path is non-negative and grows through a run of failures.
    path = bernoulli_cusum(np.zeros(10), 0.9, 0.6)
    assert np.all(np.diff(path) > 0) and path[0] > 0


@pytest.mark.parametrize("rate", [0.55, 0.7, 0.9])
def test_drift_false_alarm_rate_on_honest_annotators_is_at_most_alpha(rate):
    """Honest annotators with a steady rate (like agreement with one other noisy vote, k=2): over 500
    simulated histories the alarm rate stays near alpha (0.01), not the ~1/3 a ln(1/alpha) threshold gave;
    a real drop of delta is still caught in nearly every history."""
    rng = np.random.default_rng(7)
    alarms = sum(drift_test((rng.random(200) < rate).astype(float))["drift"] for _ in range(500))
    assert alarms / 500 <= 0.02, alarms
    caught = sum(
        drift_test(np.concatenate([rng.random(100) < rate, rng.random(100) < rate - 0.3]).astype(float))[
            "drift"
        ]
        for _ in range(100)
    )
    assert caught >= 90, caught
