"""Agreement metrics against hand-computed and published examples."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.quality.agreement import (
    agreement_summary,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    ordinal_value,
    pairwise_cohen_kappa,
    raw_agreement,
)

nan = np.nan

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders x 12 units with missing values.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
).T

# Fleiss (1971) as reproduced on Wikipedia: 10 subjects, 14 raters, 5 categories; kappa = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def _fleiss_matrix() -> np.ndarray:
    return np.array([np.repeat(np.arange(5), row) for row in FLEISS_TABLE], dtype=float)


@pytest.mark.parametrize(("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_alpha_matches_published_example(level, expected):
    est = krippendorff_alpha(KRIPPENDORFF_2011, level=level)
    assert est.value == pytest.approx(expected, abs=5e-4)
    assert est.n_units == 11  # the unit with one rating is not pairable


def test_krippendorff_nominal_by_hand():
    # Two raters, units (0,0), (1,1), (0,1): coincidences o00=2, o11=2, o01=o10=1; n=6, n0=n1=3.
    # alpha = 1 - (n-1) * (o01+o10) / (n0*n1*2) = 1 - 5*2/18 = 4/9.
    est = krippendorff_alpha(np.array([[0, 0], [1, 1], [0, 1]], dtype=float))
    assert est.value == pytest.approx(4 / 9)


def test_fleiss_kappa_matches_published_example():
    m = _fleiss_matrix()
    assert fleiss_kappa(m).value == pytest.approx(0.2099, abs=1e-4)
    assert raw_agreement(m).value == pytest.approx(0.378, abs=1e-3)  # Fleiss' P-bar


def test_cohen_kappa_matches_textbook_example():
    # Wikipedia: 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5, kappa 0.4.
    a = [1] * 25 + [0] * 25
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert cohen_kappa(a, b).value == pytest.approx(0.4)


def test_perfect_and_chance_agreement():
    perfect = np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2], [0, 0, 0]], dtype=float)
    assert fleiss_kappa(perfect).value == pytest.approx(1.0)
    assert krippendorff_alpha(perfect).value == pytest.approx(1.0)
    assert raw_agreement(perfect).value == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 3, size=(3000, 3)).astype(float)
    assert abs(fleiss_kappa(noise).value) < 0.03
    assert abs(krippendorff_alpha(noise).value) < 0.03


def test_bootstrap_interval_brackets_estimate_and_shrinks_with_data():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, size=2000)
    noisy = np.where(rng.random((2000, 3)) < 0.8, truth[:, None], rng.integers(0, 3, size=(2000, 3)))
    small = fleiss_kappa(noisy[:100].astype(float), n_boot=400, seed=1)
    large = fleiss_kappa(noisy.astype(float), n_boot=400, seed=1)
    for est in (small, large):
        assert est.low < est.value < est.high
    assert (large.high - large.low) < (small.high - small.low) / 2
    # 0.8 agreement with the truth, 3 classes: kappa about (0.8 + 0.2/3)^2 + ... well above 0.5.
    assert 0.5 < large.value < 0.8


def test_pairwise_cohen_respects_overlap_and_ids():
    m = np.array([[0, 0, nan], [1, 1, nan], [0, 1, 0], [1, 1, 1]], dtype=float)
    pairs = pairwise_cohen_kappa(m, ["u1", "u2", "u3"], min_overlap=3)
    assert [(p["rater_a"], p["rater_b"]) for p in pairs] == [("u1", "u2")]
    assert pairs[0]["n"] == 4


def test_ordinal_scale_and_summary():
    assert ordinal_value("A", 3) == -3 and ordinal_value("B", 2) == 2 and ordinal_value("tie", None) == 0
    assert ordinal_value("B", None) == 1 and np.isnan(ordinal_value("both_bad", 2))
    nominal = np.array([[0, 0], [1, 1], [0, 1], [2, 2]], dtype=float)
    ordinal = np.array([[-3, -2], [2, 3], [-1, 1], [0, 0]], dtype=float)
    out = agreement_summary(nominal, ordinal, rater_ids=[1, 2], n_boot=50, min_pair_overlap=2)
    assert out["raw_agreement"]["value"] == pytest.approx(0.75)
    # Ordinal alpha rewards near-misses: -3 vs -2 is closer than A vs B on the nominal scale.
    assert out["krippendorff_alpha_ordinal"]["value"] > out["krippendorff_alpha_nominal"]["value"]
    assert out["cohen_kappa_pairs"][0]["n"] == 4


def test_no_pairable_units_gives_empty_estimates():
    lonely = np.array([[0, nan], [nan, 1]], dtype=float)
    out = agreement_summary(lonely, lonely, rater_ids=[1, 2], n_boot=10)
    assert out["fleiss_kappa"] == {"value": None, "low": None, "high": None, "n": 0}
    empty = agreement_summary(np.zeros((0, 0)), np.zeros((0, 0)), rater_ids=[], n_boot=10)
    assert empty["krippendorff_alpha_nominal"]["n"] == 0 and empty["cohen_kappa_pairs"] == []
