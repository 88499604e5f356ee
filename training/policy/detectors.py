"""RLHF failure detectors (from the debugging playbook): pure functions over a run's metric history.

Each takes ``history`` (a list of per-step metric dicts, oldest first, each with a ``step`` key and the
metrics PPO logs: ``reward_mean``, ``kl``, ``entropy``, ``response_length_mean``, ``distinct_2``) and returns
``DetectorWarning`` objects carrying the evidence shown on the run page.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class DetectorConfig:
    """Thresholds of the failure detectors."""

    window: int = 5
    """Steps averaged at the start and at the end of the history when comparing "before" and "after"."""
    min_steps: int = 8
    """No detector judges a history shorter than this."""
    reward_rise: float = 0.5
    """Reward hacking: the reward must rise by at least this many early-window reward std (or 0.1 absolute)."""
    length_inflation: float = 0.3
    """Reward hacking: relative growth of the mean response length that counts as inflation (0.3 = +30%)."""
    diversity_drop: float = 0.3
    """Reward hacking / mode collapse: relative fall of distinct-2 that counts as a diversity loss."""
    kl_factor: float = 3.0
    """KL explosion: KL above ``kl_factor * target_kl`` for ``kl_patience`` consecutive steps."""
    kl_absolute: float = 10.0
    """KL explosion without a target: KL (nats per sequence) above this."""
    kl_patience: int = 2
    collapse_distinct: float = 0.5
    """Mode collapse: relative fall of distinct-2 (0.5 = halved) ..."""
    collapse_entropy: float = 0.5
    """... or relative fall of the policy entropy."""
    collapse_distinct_floor: float = 0.05
    """Mode collapse: distinct-2 below this is a collapse whatever it started at."""
    spike_z: float = 6.0
    """Reward spike: a step-to-step reward change this many robust std above the typical change."""
    spike_min: float = 0.5
    """Reward spike: ... and at least this large in absolute terms."""


@dataclass
class DetectorWarning:
    code: str
    title: str
    message: str
    step: int
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _series(history: list[dict], key: str) -> list[float]:
    return [float(h[key]) for h in history if h.get(key) is not None]


def _mean(xs: list[float]) -> float:
    return statistics.fmean(xs) if xs else 0.0


def _rel_change(before: float, after: float) -> float:
    return (after - before) / abs(before) if before else 0.0


def detect_reward_hacking(history: list[dict], cfg: DetectorConfig) -> list[DetectorWarning]:
    """Reward rising while responses inflate in length or lose diversity."""
    rewards = _series(history, "reward_mean")
    if len(rewards) < cfg.min_steps:
        return []
    w = cfg.window
    r0, r1 = _mean(rewards[:w]), _mean(rewards[-w:])
    rise_needed = max(cfg.reward_rise * (statistics.pstdev(rewards[:w]) or 0.0), 0.1)
    if r1 - r0 < rise_needed:
        return []
    lengths, diversity = _series(history, "response_length_mean"), _series(history, "distinct_2")
    evidence: dict[str, Any] = {"reward_before": r0, "reward_after": r1}
    reasons = []
    if len(lengths) >= cfg.min_steps:
        l0, l1 = _mean(lengths[:w]), _mean(lengths[-w:])
        evidence |= {"length_before": l0, "length_after": l1}
        if _rel_change(l0, l1) >= cfg.length_inflation:
            reasons.append(f"mean length {l0:.1f} -> {l1:.1f}")
    if len(diversity) >= cfg.min_steps:
        d0, d1 = _mean(diversity[:w]), _mean(diversity[-w:])
        evidence |= {"distinct_2_before": d0, "distinct_2_after": d1}
        if -_rel_change(d0, d1) >= cfg.diversity_drop:
            reasons.append(f"distinct-2 {d0:.2f} -> {d1:.2f}")
    if not reasons:
        return []
    return [
        DetectorWarning(
            "reward_hacking",
            "Possible reward hacking",
            f"Reward rose {r0:.3f} -> {r1:.3f} while " + " and ".join(reasons) + ". Read the samples.",
            int(history[-1].get("step", len(history))),
            evidence,
        )
    ]


def detect_kl_explosion(
    history: list[dict], cfg: DetectorConfig, target_kl: float | None = None
) -> list[DetectorWarning]:
    """KL to the reference far above the target (or an absolute bound) for several consecutive steps."""
    kls = [(int(h.get("step", i)), float(h["kl"])) for i, h in enumerate(history) if h.get("kl") is not None]
    limit = cfg.kl_factor * target_kl if target_kl else cfg.kl_absolute
    run: list[tuple[int, float]] = []
    for step, kl in kls:
        run = run + [(step, kl)] if kl > limit else []
        if len(run) >= cfg.kl_patience:
            return [
                DetectorWarning(
                    "kl_explosion",
                    "KL explosion",
                    f"KL to the reference is {kl:.2f}, above the limit {limit:.2f} for {len(run)} steps "
                    "(raise beta, lower the learning rate, or check the reward scale).",
                    step,
                    {"limit": limit, "target_kl": target_kl, "kl_recent": [v for _, v in run][-5:]},
                )
            ]
    return []


def detect_mode_collapse(history: list[dict], cfg: DetectorConfig) -> list[DetectorWarning]:
    """Diversity (distinct-2) or entropy collapsing relative to the start of the run."""
    w = cfg.window
    out: list[DetectorWarning] = []
    diversity, entropy = _series(history, "distinct_2"), _series(history, "entropy")
    evidence: dict[str, Any] = {}
    reasons = []
    if len(diversity) >= cfg.min_steps:
        d0, d1 = _mean(diversity[:w]), _mean(diversity[-w:])
        evidence |= {"distinct_2_before": d0, "distinct_2_after": d1}
        if -_rel_change(d0, d1) >= cfg.collapse_distinct or d1 < cfg.collapse_distinct_floor:
            reasons.append(f"distinct-2 {d0:.2f} -> {d1:.2f}")
    if len(entropy) >= cfg.min_steps:
        e0, e1 = _mean(entropy[:w]), _mean(entropy[-w:])
        evidence |= {"entropy_before": e0, "entropy_after": e1}
        if -_rel_change(e0, e1) >= cfg.collapse_entropy:
            reasons.append(f"entropy {e0:.2f} -> {e1:.2f}")
    if reasons:
        out.append(
            DetectorWarning(
                "mode_collapse",
                "Mode collapse",
                "The policy is losing diversity: " + ", ".join(reasons) + ".",
                int(history[-1].get("step", len(history))),
                evidence,
            )
        )
    return out


def detect_reward_spikes(history: list[dict], cfg: DetectorConfig) -> list[DetectorWarning]:
    """Step-to-step jumps of the mean reward far outside the run's typical change (robust z-score)."""
    steps = [
        (int(h.get("step", i)), float(h["reward_mean"])) for i, h in enumerate(history) if "reward_mean" in h
    ]
    if len(steps) < cfg.min_steps:
        return []
    out = []
    for i in range(cfg.window, len(steps)):
        prev = [steps[j][1] - steps[j - 1][1] for j in range(1, i)]
        med = statistics.median(prev)
        mad = statistics.median([abs(d - med) for d in prev]) * 1.4826
        change = steps[i][1] - steps[i - 1][1]
        scale = max(mad, 1e-6)
        if abs(change - med) > cfg.spike_z * scale and abs(change) >= cfg.spike_min:
            out.append(
                DetectorWarning(
                    "reward_spike",
                    "Reward spike",
                    f"Mean reward jumped {steps[i - 1][1]:.3f} -> {steps[i][1]:.3f} at step {steps[i][0]} "
                    f"(typical change {med:.3f} +- {mad:.3f}). Check those samples for an exploit.",
                    steps[i][0],
                    {
                        "before": steps[i - 1][1],
                        "after": steps[i][1],
                        "typical_change": med,
                        "robust_std": mad,
                    },
                )
            )
    return out


def detect_all(
    history: list[dict], target_kl: float | None = None, config: DetectorConfig | None = None
) -> list[DetectorWarning]:
    """Run every detector over a metric history."""
    cfg = config or DetectorConfig()
    return (
        detect_reward_hacking(history, cfg)
        + detect_kl_explosion(history, cfg, target_kl)
        + detect_mode_collapse(history, cfg)
        + detect_reward_spikes(history, cfg)
    )
