"""distinct-n / length statistics, and the failure detectors on crafted metric streams."""

import random

import pytest

from training.policy.detectors import DetectorConfig, detect_all
from training.policy.metrics import distinct_n, distinct_n_text, length_stats


def test_distinct_n():
    assert distinct_n([[1, 2, 3], [1, 2, 4]], 1) == pytest.approx(4 / 6)
    assert distinct_n([[1, 2, 3], [1, 2, 4]], 2) == pytest.approx(3 / 4)
    assert distinct_n([[1]], 2) == 0.0
    assert distinct_n_text(["a b a b"], 2) == pytest.approx(2 / 3)


def test_length_stats():
    s = length_stats([1, 2, 3, 10])
    assert s["mean"] == 4.0 and s["median"] == 2.5 and s["max"] == 10.0 and s["min"] == 1.0


def _stream(n=30, seed=0, **trend):
    """A healthy run: reward creeping up with noise, KL near 3, steady length/diversity/entropy."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        row = {
            "step": i + 1,
            "reward_mean": 0.5 + 0.01 * i + rng.gauss(0, 0.03),
            "kl": 3.0 + rng.gauss(0, 0.3),
            "entropy": 2.0 + rng.gauss(0, 0.05),
            "response_length_mean": 40 + rng.gauss(0, 1.5),
            "distinct_2": 0.8 + rng.gauss(0, 0.02),
        }
        for key, fn in trend.items():
            row[key] = fn(i, row[key])
        out.append(row)
    return out


def codes(history, target_kl=3.0):
    return {w.code for w in detect_all(history, target_kl=target_kl, config=DetectorConfig())}


@pytest.mark.parametrize("seed", range(5))
def test_healthy_run_raises_nothing(seed):
    assert codes(_stream(seed=seed)) == set()


def test_reward_hacking_length_inflation():
    history = _stream(reward_mean=lambda i, v: v + 0.1 * i, response_length_mean=lambda i, v: v + 3 * i)
    warnings = detect_all(history, target_kl=3.0)
    hacking = [w for w in warnings if w.code == "reward_hacking"]
    assert hacking and hacking[0].evidence["length_after"] > 1.3 * hacking[0].evidence["length_before"]
    assert "length" in hacking[0].message


def test_reward_rise_with_steady_length_is_not_hacking():
    assert "reward_hacking" not in codes(_stream(reward_mean=lambda i, v: v + 0.1 * i))


def test_kl_explosion():
    history = _stream(kl=lambda i, v: v if i < 20 else 40.0)
    warnings = [w for w in detect_all(history, target_kl=3.0) if w.code == "kl_explosion"]
    assert warnings and warnings[0].evidence["kl_recent"][-1] == 40.0 and warnings[0].step == 22


def test_mode_collapse():
    history = _stream(
        distinct_2=lambda i, v: max(0.02, v - 0.04 * i), entropy=lambda i, v: max(0.1, v - 0.1 * i)
    )
    assert "mode_collapse" in codes(history)


def test_reward_spike():
    history = _stream(reward_mean=lambda i, v: v + (5.0 if i == 15 else 0.0))
    spikes = [w for w in detect_all(history, target_kl=3.0) if w.code == "reward_spike"]
    assert spikes and spikes[0].step == 16 and spikes[0].evidence["after"] > 5.0


def test_short_history_is_not_judged():
    assert (
        codes(_stream(n=4, reward_mean=lambda i, v: v + 5 * i, response_length_mean=lambda i, v: v * 3))
        == set()
    )
