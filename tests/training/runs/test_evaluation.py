"""Evaluation maths on hand-computed inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training import evaluation as ev


def test_pairwise_accuracy_counts_ties_half():
    assert ev.pairwise_accuracy([2, 1, 0, 5], [1, 2, 0, 4]) == pytest.approx((1 + 0 + 0.5 + 1) / 4)


def test_reliability_bins_and_ece_by_hand():
    probs = [0.05, 0.15, 0.95, 1.0, 0.9]
    labels = [0, 1, 1, 1, 0]
    bins = ev.reliability_bins(probs, labels, n_bins=10)
    assert [b["count"] for b in bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 3]
    assert bins[9]["confidence"] == pytest.approx((0.95 + 1.0 + 0.9) / 3)
    assert bins[9]["accuracy"] == pytest.approx(2 / 3)
    assert bins[2]["confidence"] is None
    # ECE = 1/5*|0-0.05| + 1/5*|1-0.15| + 3/5*|2/3-0.95|
    expected = 0.2 * 0.05 + 0.2 * 0.85 + 0.6 * abs(2 / 3 - 0.95)
    assert ev.expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(expected)


def test_perfectly_calibrated_bins_have_zero_ece():
    assert ev.expected_calibration_error(
        [0.25] * 4 + [0.75] * 4, [1, 0, 0, 0, 1, 1, 1, 0], 2
    ) == pytest.approx(0)


def test_pair_calibration_is_symmetric_and_matches_confidence_form():
    rc, rr = np.array([2.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0])
    ece, bins = ev.pair_calibration(rc, rr, n_bins=10)
    p = 1 / (1 + np.exp(-(rc - rr)))  # 0.8808, 0.2689, 0.5
    conf = np.maximum(p, 1 - p)
    correct = (rc > rr).astype(float) + 0.5 * (rc == rr)
    # bins of confidences: 0.8808 -> [0.8,0.9) with correct 1; 0.7311 -> [0.7,0.8) with correct 0;
    # 0.5 -> [0.5,0.6): its two orders are (0.5, label 1) and (0.5, label 0), mean 0.5, no error.
    expected = (abs(1 - conf[0]) + abs(0 - conf[1])) / 3
    assert ece == pytest.approx(expected)
    assert sum(b["count"] for b in bins) == 6
    assert bins[8]["count"] == 1 and bins[1]["count"] == 1  # p=0.88 and its mirror 0.12
    assert correct.tolist() == [1.0, 0.0, 0.5]


def test_sigmoid_is_stable_for_large_inputs():
    out = ev.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    assert out.tolist() == [0.0, 0.5, 1.0]


def test_pearson_and_constant_input():
    assert ev.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert ev.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(ev.pearson([1, 1, 1], [1, 2, 3]))


def test_accuracy_by_length_difference_buckets():
    # length diffs -300, -100, 0, 50, 1000: one per bucket (buckets are [lo, hi), 50 opens [50, 200))
    rc = [1, 0, 1, 1, 1]
    rr = [0, 1, 0, 0, 2]
    len_c = [0, 0, 100, 150, 1000]
    len_r = [300, 100, 100, 100, 0]
    buckets = ev.accuracy_by_length_difference(
        rc, rr, len_c, len_r, edges=(-math.inf, -200, -50, 50, 200, math.inf)
    )
    assert [b["count"] for b in buckets] == [1, 1, 1, 1, 1]
    assert [b["accuracy"] for b in buckets] == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert buckets[0]["lo"] is None and buckets[-1]["hi"] is None


def test_evaluate_pairs_report_length_bias_sources_and_ties():
    rows = [
        {"chosen": "a" * 10, "rejected": "b" * 2},
        {"chosen": "a" * 8, "rejected": "b" * 4},
        {"chosen": "a" * 1, "rejected": "b" * 9},
        {"chosen": "tie", "rejected": "tie"},
    ]
    meta = [
        {"chosen_model": "x", "rejected_model": "y", "label_type": "pref"},
        {"source": "hh-rlhf", "label_type": "pref"},
        {"chosen_model": "y", "rejected_model": "x", "label_type": "pref"},
        {"label_type": "tie"},
    ]
    # rewards = length: a pure length model
    rc = [10.0, 8.0, 1.0, 3.0]
    rr = [2.0, 4.0, 9.0, 3.0]
    report = ev.evaluate_pairs(rc, rr, rows, meta)
    assert report["n"] == 3 and report["n_ties"] == 1
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["mean_margin"] == pytest.approx((8 + 4 - 8) / 3)
    assert report["length_correlation"] == pytest.approx(1.0)
    assert report["reward_mean"] == pytest.approx(np.mean(rc + rr))
    assert report["reward_std"] == pytest.approx(np.std(rc + rr))
    assert report["by_source"]["x vs y"]["count"] == 2
    assert report["by_source"]["x vs y"]["accuracy"] == pytest.approx(0.5)
    assert report["by_source"]["hh-rlhf"] == {"count": 1, "accuracy": 1.0, "mean_margin": 4.0}
