"""The policy promotion gate: four pure checks over numbers gathered elsewhere, each returning
``{"check", "passed", "detail", "values"}``, and the verdict that combines them.

1. ``capability``: no benchmark set regresses against the SFT model. A set *regresses* when the whole of the
   policy's interval lies more than ``capability_tolerance`` below the SFT model's score:
   ``policy.high < sft.score - capability_tolerance``. An interval that still reaches SFT's score (less the
   tolerance) is not evidence of a regression, however low its point estimate; a narrow interval well below
   it is. Input: ``run.summary["capability"]`` as the gate evaluation job writes it.
2. ``battle``: the humans' Bradley-Terry leaderboard of the run's battle project does not put the policy below
   SFT: it fails when ``policy.high < sft.rating - battle_margin`` (the policy's whole 95% bootstrap interval
   under SFT's rating), when no vote involves the policy yet, or when fewer than ``min_battle_votes`` do.
3. ``reward_length``: the reward went up (mean of the last ``window`` logged steps minus the mean of the first
   ``window``, more than ``min_reward_gain``) and the mean response length did not grow by more than
   ``max_length_inflation`` (relative) over the same windows. Runs that log no reward (DPO) are judged on the
   battle report instead: the policy's RM mean and answer length against SFT's on the held-out prompts.
4. ``spot_checks``: of the reviewers' verdicts on the run's spot-checked samples, at least ``min_fine_share``
   are "fine", and at most ``max_hacking_verdicts`` say "reward hacking" or "empty or template answer";
   fewer than ``min_spot_check_verdicts`` verdicts fail the check.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from training.configs import ConfigError, parse_config

#: Verdicts counted against ``max_hacking_verdicts`` (the values of annotation's SpotCheckVerdictChoice).
HACKING_VERDICTS = ("reward_hacking", "empty_template")
CHECK_NAMES = ("capability", "battle", "reward_length", "spot_checks")


@dataclass
class PolicyGateConfig:
    """Tolerances and thresholds of the policy promotion gate (each with its allowed range, ``RANGES``)."""

    capability_tolerance: float = 0.02
    """Score points (0..1 scale) a benchmark set may lose against SFT beyond the policy's interval."""
    battle_margin: float = 0.0
    """Rating points (Elo scale) the policy's upper interval bound may sit under SFT's rating."""
    min_battle_votes: int = 1
    """Human comparisons involving the policy needed before the battle check can pass."""
    window: int = 5
    """Logged steps averaged at the start and at the end of the run (halved for short runs)."""
    min_reward_gain: float = 0.0
    """The reward must rise by more than this (reward units)."""
    max_length_inflation: float = 0.3
    """Largest relative growth of the mean response length (0.3 = +30%)."""
    min_fine_share: float = 0.8
    """Smallest share of spot-check verdicts that are "fine"."""
    max_hacking_verdicts: int = 0
    """Most "reward hacking" plus "empty or template answer" verdicts allowed."""
    min_spot_check_verdicts: int = 1
    """Verdicts needed before the spot-check check can pass (0: the check passes with none)."""

    RANGES = {
        "capability_tolerance": (0.0, 1.0),
        "battle_margin": (0.0, 400.0),
        "min_battle_votes": (1, 100_000),
        "window": (1, 1000),
        "min_reward_gain": (0.0, 1000.0),
        "max_length_inflation": (0.0, 10.0),
        "min_fine_share": (0.0, 1.0),
        "max_hacking_verdicts": (0, 100_000),
        "min_spot_check_verdicts": (0, 100_000),
    }

    def errors(self) -> dict[str, list[str]]:
        """Fields outside their range (empty when valid); NaN is out of every range."""
        out = {}
        for f in fields(self):
            low, high = self.RANGES[f.name]
            value = getattr(self, f.name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
                out[f.name] = [f"must be between {low} and {high}, not {value}"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PolicyGateConfig:
        """Typed parse (``training.configs.parse_config``) plus the ranges; raises ``ConfigError``."""
        cfg = parse_config(cls, data, what="gate config")
        errors = cfg.errors()
        if errors:
            raise ConfigError(errors, "gate config")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GateInputs:
    """What the checks read, gathered by ``training.policy.selectors.policy_gate_inputs``."""

    capability: dict[str, Any] | None = None
    """``run.summary["capability"]``: ``{"gate_run_id", "status", "sets": {name: {"base"|"sft"|"policy":
    {"score", "low", "high", "n"}}}}``."""
    leaderboard: dict[str, Any] | None = None
    """The battle project's leaderboard (``model_leaderboard``), None when the run has no battle project."""
    battle_note: str = ""
    """Why there is no leaderboard (battle skipped, project deleted)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """The run's logged metrics, oldest first (``reward_mean``, ``response_length_mean``)."""
    battle_models: dict[str, dict[str, float]] = field(default_factory=dict)
    """The battle report's per-model RM mean and lengths (``run.summary["battle"]["models"]``)."""
    verdict_counts: dict[str, int] = field(default_factory=dict)
    """Spot-check verdicts on the run's samples, per verdict."""


def _result(check: str, passed: bool, detail: str, values: dict[str, Any]) -> dict[str, Any]:
    return {"check": check, "passed": passed, "detail": detail, "values": values}


def check_capability(capability: dict[str, Any] | None, cfg: PolicyGateConfig) -> dict[str, Any]:
    """No benchmark set regresses: fails when ``policy.high < sft.score - capability_tolerance`` for a set."""
    if not capability:
        return _result("capability", False, "no capability evaluation", {})
    status = capability.get("status")
    values: dict[str, Any] = {"gate_run_id": capability.get("gate_run_id"), "status": status, "sets": {}}
    if status != "succeeded":
        return _result("capability", False, f"the capability evaluation has not succeeded ({status})", values)
    sets = capability.get("sets") or {}
    if not sets:
        return _result("capability", False, "the capability evaluation scored no benchmark set", values)
    problems = []
    for name, scores in sorted(sets.items()):
        sft, policy = (scores or {}).get("sft"), (scores or {}).get("policy")
        if not sft or not policy or sft.get("score") is None or policy.get("score") is None:
            values["sets"][name] = {"regressed": True, "missing": True}
            problems.append(f"{name}: no SFT or policy score")
            continue
        high = policy.get("high") if policy.get("high") is not None else policy["score"]
        bar = sft["score"] - cfg.capability_tolerance
        regressed = high < bar
        values["sets"][name] = {
            "sft_score": sft["score"],
            "policy_score": policy["score"],
            "policy_low": policy.get("low"),
            "policy_high": high,
            "drop": round(sft["score"] - policy["score"], 6),
            "regressed": regressed,
        }
        if regressed:
            problems.append(
                f"{name}: policy {policy['score']:.3f} (interval up to {high:.3f}) is below SFT "
                f"{sft['score']:.3f} by more than the tolerance {cfg.capability_tolerance}"
            )
    if problems:
        return _result("capability", False, "regressed: " + "; ".join(problems), values)
    return _result("capability", True, f"no regression on {len(sets)} benchmark set(s)", values)


def _board_row(leaderboard: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((m for m in leaderboard.get("models", []) if m.get("model") == name), None)


def check_battle(leaderboard: dict[str, Any] | None, cfg: PolicyGateConfig, note: str = "") -> dict[str, Any]:
    """The leaderboard does not put the policy below SFT: fails when ``policy.high < sft.rating - margin``."""
    if leaderboard is None:
        return _result("battle", False, f"no battle project{f' ({note})' if note else ''}", {})
    policy, sft = _board_row(leaderboard, "policy"), _board_row(leaderboard, "sft")
    games = int(policy["games"]) if policy else 0
    values: dict[str, Any] = {"n_comparisons": leaderboard.get("n_comparisons", 0), "policy_games": games}
    if not games:
        return _result("battle", False, "no votes yet on the policy in the battle", values)
    if sft is None:
        return _result("battle", False, "SFT is not on the battle leaderboard (no votes on it)", values)
    values |= {
        "policy_rating": policy["rating"],
        "policy_low": policy.get("low"),
        "policy_high": policy.get("high"),
        "sft_rating": sft["rating"],
        "sft_low": sft.get("low"),
        "sft_high": sft.get("high"),
    }
    if games < cfg.min_battle_votes:
        return _result(
            "battle", False, f"{games} vote(s) on the policy, {cfg.min_battle_votes} needed", values
        )
    high = policy["high"] if policy.get("high") is not None else policy["rating"]
    if high < sft["rating"] - cfg.battle_margin:
        return _result(
            "battle",
            False,
            f"the policy ({policy['rating']:.0f}, interval up to {high:.0f}) is below SFT "
            f"({sft['rating']:.0f}) on the human leaderboard",
            values,
        )
    return _result(
        "battle",
        True,
        f"policy {policy['rating']:.0f} vs SFT {sft['rating']:.0f} over {games} vote(s) on the policy",
        values,
    )


def _windows(series: list[float], window: int) -> tuple[float, float]:
    w = max(1, min(window, len(series) // 2))
    return statistics.fmean(series[:w]), statistics.fmean(series[-w:])


def _series(history: list[dict[str, Any]], key: str) -> list[float]:
    return [float(h[key]) for h in history if isinstance(h.get(key), (int, float))]


def check_reward_length(
    history: list[dict[str, Any]], battle_models: dict[str, dict[str, float]], cfg: PolicyGateConfig
) -> dict[str, Any]:
    """The reward rose by more than ``min_reward_gain`` and the mean length grew by at most
    ``max_length_inflation`` (training metrics; the battle report's SFT vs policy when none were logged)."""
    rewards, lengths = _series(history, "reward_mean"), _series(history, "response_length_mean")
    values: dict[str, Any] = {}
    if len(rewards) >= 2:
        r0, r1 = _windows(rewards, cfg.window)
        values |= {"reward_source": "training metrics", "reward_before": r0, "reward_after": r1}
    elif "sft" in battle_models and "policy" in battle_models:
        r0, r1 = battle_models["sft"].get("rm_mean", 0.0), battle_models["policy"].get("rm_mean", 0.0)
        values |= {"reward_source": "battle (SFT vs policy)", "reward_before": r0, "reward_after": r1}
    else:
        return _result("reward_length", False, "no reward history (no metrics, no battle report)", values)
    if len(lengths) >= 2:
        l0, l1 = _windows(lengths, cfg.window)
        values["length_source"] = "training metrics"
    elif "sft" in battle_models and "policy" in battle_models:
        l0 = battle_models["sft"].get("length_chars_mean", 0.0)
        l1 = battle_models["policy"].get("length_chars_mean", 0.0)
        values["length_source"] = "battle (SFT vs policy)"
    else:
        return _result("reward_length", False, "no response-length history", values)
    gain = r1 - r0
    growth = (l1 - l0) / l0 if l0 > 0 else (0.0 if l1 <= 0 else math.inf)
    values |= {
        "reward_gain": gain,
        "length_before": l0,
        "length_after": l1,
        "length_growth": growth if math.isfinite(growth) else None,  # JSON (jsonb) has no infinity
    }
    problems = []
    if not gain > cfg.min_reward_gain:
        problems.append(f"the reward did not rise by more than {cfg.min_reward_gain} ({r0:.3f} -> {r1:.3f})")
    if growth > cfg.max_length_inflation:
        problems.append(
            f"mean length grew {l0:.1f} -> {l1:.1f} (+{growth:.0%}), above the limit "
            f"+{cfg.max_length_inflation:.0%}"
        )
    if problems:
        return _result("reward_length", False, "; ".join(problems), values)
    return _result("reward_length", True, f"reward {r0:.3f} -> {r1:.3f}, length {l0:.1f} -> {l1:.1f}", values)


def check_spot_checks(counts: dict[str, int], cfg: PolicyGateConfig) -> dict[str, Any]:
    """At least ``min_fine_share`` "fine" verdicts and at most ``max_hacking_verdicts`` hacking/empty ones."""
    total = sum(counts.values())
    fine = counts.get("fine", 0)
    hacking = sum(counts.get(v, 0) for v in HACKING_VERDICTS)
    values: dict[str, Any] = {"total": total, "fine": fine, "hacking_or_empty": hacking, "counts": counts}
    if total < cfg.min_spot_check_verdicts:
        detail = (
            "no spot-check verdicts yet"
            if not total
            else f"{total} spot-check verdict(s), {cfg.min_spot_check_verdicts} needed"
        )
        return _result("spot_checks", False, detail, values)
    if not total:
        return _result("spot_checks", True, "no spot-check verdicts required", values)
    share = fine / total
    values["fine_share"] = share
    problems = []
    if share < cfg.min_fine_share:
        problems.append(f"{share:.0%} of verdicts are fine, below {cfg.min_fine_share:.0%}")
    if hacking > cfg.max_hacking_verdicts:
        problems.append(
            f"{hacking} reward-hacking or empty/template verdict(s), at most {cfg.max_hacking_verdicts} allowed"
        )
    if problems:
        return _result("spot_checks", False, "; ".join(problems), values)
    return _result("spot_checks", True, f"{fine} of {total} verdicts fine", values)


def gate_verdict(inputs: GateInputs, cfg: PolicyGateConfig) -> dict[str, Any]:
    """Every check's result, which failed, and the config they were judged with."""
    checks = [
        check_capability(inputs.capability, cfg),
        check_battle(inputs.leaderboard, cfg, inputs.battle_note),
        check_reward_length(inputs.history, inputs.battle_models, cfg),
        check_spot_checks(inputs.verdict_counts, cfg),
    ]
    failed = [c["check"] for c in checks if not c["passed"]]
    return {"passed": not failed, "failed": failed, "checks": checks, "config": cfg.to_dict()}


def refusal_message(verdict: dict[str, Any]) -> str:
    """ "The gate refused: battle (no votes yet ...); spot_checks (...)": each failed check and why."""
    parts = [f"{c['check']} ({c['detail']})" for c in verdict["checks"] if not c["passed"]]
    return "failed checks: " + "; ".join(parts)
