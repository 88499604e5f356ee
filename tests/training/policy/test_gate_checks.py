"""The policy promotion gate's pure checks, each with hand-made numbers that pass and that fail, and the
gate config's typed parse with ranges."""

import math

import pytest

from training.configs import ConfigError
from training.policy.gate import (
    GateInputs,
    PolicyGateConfig,
    check_battle,
    check_capability,
    check_reward_length,
    check_spot_checks,
    gate_verdict,
    refusal_message,
)

CFG = PolicyGateConfig()


def _set(sft: float, policy: float, low: float, high: float) -> dict:
    return {
        "base": {"score": 0.3, "low": 0.2, "high": 0.4, "n": 50},
        "sft": {"score": sft, "low": sft - 0.1, "high": sft + 0.1, "n": 50},
        "policy": {"score": policy, "low": low, "high": high, "n": 50},
    }


def _capability(**sets) -> dict:
    return {"gate_run_id": 7, "status": "succeeded", "sets": sets}


def test_capability_passes_when_every_interval_reaches_sft_less_tolerance():
    # arithmetic: policy 0.55 below SFT 0.60, but its interval reaches 0.59 >= 0.60 - 0.02: no regression.
    out = check_capability(
        _capability(arithmetic=_set(0.60, 0.55, 0.45, 0.59), qa=_set(0.5, 0.6, 0.5, 0.7)), CFG
    )
    assert out["check"] == "capability" and out["passed"], out
    assert out["values"]["sets"]["arithmetic"]["regressed"] is False
    assert out["values"]["sets"]["arithmetic"]["drop"] == pytest.approx(0.05)


def test_capability_fails_on_a_set_whose_interval_lies_below_sft_less_tolerance():
    # 0.57 < 0.60 - 0.02 = 0.58: the whole interval is below the bar.
    out = check_capability(
        _capability(arithmetic=_set(0.60, 0.50, 0.43, 0.57), qa=_set(0.5, 0.5, 0.4, 0.6)), CFG
    )
    assert not out["passed"] and "arithmetic" in out["detail"] and "qa" not in out["detail"]
    assert out["values"]["sets"]["arithmetic"]["regressed"] is True
    # A looser tolerance lets the same numbers pass.
    assert check_capability(
        _capability(arithmetic=_set(0.60, 0.50, 0.43, 0.57)), PolicyGateConfig(capability_tolerance=0.05)
    )["passed"]


def test_capability_fails_without_an_evaluation_or_before_it_succeeded():
    assert check_capability(None, CFG)["detail"] == "no capability evaluation"
    running = check_capability({"gate_run_id": 3, "status": "running", "sets": {}}, CFG)
    assert not running["passed"] and "running" in running["detail"]
    empty = check_capability(_capability(), CFG)
    assert not empty["passed"] and "no benchmark set" in empty["detail"]
    missing = check_capability(_capability(qa={"sft": {"score": 0.5}}), CFG)
    assert not missing["passed"] and "qa" in missing["detail"]


def _board(policy: tuple, sft: tuple, policy_games: int = 10) -> dict:
    return {
        "n_comparisons": 20,
        "models": [
            {
                "model": "policy",
                "rating": policy[0],
                "low": policy[1],
                "high": policy[2],
                "games": policy_games,
            },
            {"model": "sft", "rating": sft[0], "low": sft[1], "high": sft[2], "games": 15},
            {"model": "base", "rating": 900, "low": 850, "high": 950, "games": 15},
        ],
    }


def test_battle_passes_when_the_policy_interval_reaches_sft():
    out = check_battle(_board((990, 940, 1020), (1010, 980, 1040)), CFG)
    assert out["passed"] and out["values"]["policy_games"] == 10


def test_battle_fails_when_the_policy_is_below_sft_with_its_interval():
    out = check_battle(_board((900, 860, 980), (1050, 1010, 1090)), CFG)
    assert not out["passed"] and "below SFT" in out["detail"]
    # A margin of 100 rating points forgives it (980 >= 1050 - 100).
    assert check_battle(_board((900, 860, 980), (1050, 1010, 1090)), PolicyGateConfig(battle_margin=100))[
        "passed"
    ]


def test_battle_fails_without_votes_or_project():
    assert check_battle(None, CFG, "disabled")["detail"] == "no battle project (disabled)"
    no_votes = check_battle({"n_comparisons": 0, "models": [], "order": []}, CFG)
    assert not no_votes["passed"] and no_votes["detail"] == "no votes yet on the policy in the battle"
    few = check_battle(
        _board((1100, 1000, 1200), (900, 800, 1000), policy_games=2), PolicyGateConfig(min_battle_votes=5)
    )
    assert not few["passed"] and "5 needed" in few["detail"]


def _history(rewards: list[float], lengths: list[float]) -> list[dict]:
    return [
        {"step": i + 1, "reward_mean": r, "response_length_mean": n}
        for i, (r, n) in enumerate(zip(rewards, lengths, strict=True))
    ]


def test_reward_length_passes_when_reward_rises_and_length_holds():
    history = _history([0.1] * 5 + [0.5] * 5, [20] * 5 + [22] * 5)
    out = check_reward_length(history, {}, CFG)
    assert out["passed"], out
    assert out["values"]["reward_gain"] == pytest.approx(0.4) and out["values"][
        "length_growth"
    ] == pytest.approx(0.1)


def test_reward_length_fails_on_length_inflation_and_on_flat_reward():
    inflated = check_reward_length(_history([0.1] * 5 + [0.9] * 5, [20] * 5 + [40] * 5), {}, CFG)
    assert not inflated["passed"] and "mean length grew 20.0 -> 40.0" in inflated["detail"]
    flat = check_reward_length(_history([0.3] * 10, [20] * 10), {}, CFG)
    assert not flat["passed"] and "did not rise" in flat["detail"]
    # Short runs: the window shrinks to half the history (2 steps -> 1 vs 1).
    assert check_reward_length(_history([0.1, 0.2], [10, 11]), {}, CFG)["passed"]


def test_reward_length_falls_back_to_the_battle_report_and_fails_without_data():
    models = {
        "sft": {"rm_mean": 0.2, "length_chars_mean": 100.0},
        "policy": {"rm_mean": 0.6, "length_chars_mean": 180.0},
    }
    out = check_reward_length([], models, CFG)
    assert not out["passed"] and out["values"]["reward_source"] == "battle (SFT vs policy)"
    assert out["values"]["length_growth"] == pytest.approx(0.8)
    assert check_reward_length([], models, PolicyGateConfig(max_length_inflation=1.0))["passed"]
    assert check_reward_length([], {}, CFG)["detail"].startswith("no reward history")
    grew_from_empty = check_reward_length(_history([0.1, 0.5], [0, 5]), {}, CFG)
    assert not grew_from_empty["passed"] and grew_from_empty["values"]["length_growth"] is None


def test_spot_checks_thresholds():
    assert check_spot_checks({"fine": 9, "hallucination": 1}, CFG)["passed"]
    low_share = check_spot_checks({"fine": 6, "unsafe": 4}, CFG)
    assert not low_share["passed"] and "60% of verdicts are fine" in low_share["detail"]
    hacking = check_spot_checks({"fine": 19, "reward_hacking": 1}, CFG)
    assert not hacking["passed"] and "1 reward-hacking or empty/template" in hacking["detail"]
    assert check_spot_checks({"fine": 18, "empty_template": 2}, PolicyGateConfig(max_hacking_verdicts=2))[
        "passed"
    ]
    none = check_spot_checks({"fine": 0, "reward_hacking": 0}, CFG)
    assert not none["passed"] and none["detail"] == "no spot-check verdicts yet"
    assert check_spot_checks({}, PolicyGateConfig(min_spot_check_verdicts=0))["passed"]


def test_gate_verdict_names_each_failed_check():
    inputs = GateInputs(
        capability=_capability(qa=_set(0.5, 0.5, 0.4, 0.6)),
        leaderboard=_board((1000, 950, 1050), (1000, 950, 1050)),
        history=_history([0.1] * 5 + [0.5] * 5, [20] * 10),
        verdict_counts={"fine": 3, "reward_hacking": 1},
    )
    verdict = gate_verdict(inputs, CFG)
    assert not verdict["passed"] and verdict["failed"] == ["spot_checks"]
    assert [c["check"] for c in verdict["checks"]] == ["capability", "battle", "reward_length", "spot_checks"]
    assert refusal_message(verdict).startswith("failed checks: spot_checks (")
    inputs.verdict_counts = {"fine": 4}
    assert gate_verdict(inputs, CFG)["passed"]


def test_gate_config_parse_refuses_wrong_types_unknown_keys_and_out_of_range():
    assert (
        PolicyGateConfig.from_dict({"capability_tolerance": 0.1, "min_battle_votes": 3}).min_battle_votes == 3
    )
    for bad, field in [
        ({"capability_tolerance": 1.5}, "capability_tolerance"),
        ({"min_fine_share": -0.1}, "min_fine_share"),
        ({"max_hacking_verdicts": "two"}, "max_hacking_verdicts"),
        ({"tolerence": 0.1}, "tolerence"),
        ({"min_battle_votes": 0}, "min_battle_votes"),
    ]:
        with pytest.raises(ConfigError) as exc:
            PolicyGateConfig.from_dict(bad)
        assert field in exc.value.errors, exc.value.errors
    assert PolicyGateConfig(max_length_inflation=math.nan).errors()
