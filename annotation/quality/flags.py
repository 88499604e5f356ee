"""Quality thresholds (a project's ``quality_settings``) and the pure rules that turn statistics into flags.

Each rule returns a reason code and its evidence (the numbers and the thresholds that fired), stored on
``AnnotatorFlag``. Rules only look at annotators with enough work to judge (``min_judgments``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from annotation.quality.annotators import AnnotatorStats

REASON_LOW_GOLD = "low_gold_accuracy"
REASON_POSITION_BIAS = "position_bias"
REASON_TOO_FAST = "speed_outlier"
REASON_DRIFT = "drift"
REASON_LOW_AGREEMENT = "low_agreement"
REASON_LOW_RELIABILITY = "low_reliability"
REASONS = (
    REASON_LOW_GOLD,
    REASON_POSITION_BIAS,
    REASON_TOO_FAST,
    REASON_DRIFT,
    REASON_LOW_AGREEMENT,
    REASON_LOW_RELIABILITY,
)


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds for quality flags and the cost knobs of the statistics. Set any of them per project in
    ``Project.quality_settings`` (a JSON object with these keys); missing keys take these defaults."""

    min_judgments: int = 20
    """An annotator needs this many judgments (in the window being judged) before any rule applies."""
    gold_min_items: int = 10
    """Gold answers needed before the gold-accuracy rule applies."""
    gold_accuracy_min: float = 0.6
    """Flag ``low_gold_accuracy`` below this share of correct gold answers."""
    position_bias_share: float = 0.75
    """Flag ``position_bias`` when the share of "A" (or of "B") among decisive answers reaches this..."""
    position_bias_p: float = 0.001
    """...and the two-sided binomial test against 1/2 gives a p-value below this."""
    fast_ms: int = 2000
    """A judgment faster than this (milliseconds) is implausibly fast."""
    fast_share_max: float = 0.3
    """Flag ``speed_outlier`` when more than this share of an annotator's judgments are implausibly fast..."""
    speed_ratio_min: float = 0.25
    """...or when their median time is below this fraction of the project's median time."""
    consensus_min: float = 0.4
    """Flag ``low_agreement`` when agreement with the leave-one-out consensus is below this..."""
    consensus_min_items: int = 20
    """...over at least this many judgments with a consensus."""
    drift_window: int = 100
    """Drift test: the most recent judgments examined by the CUSUM."""
    drift_min_baseline: int = 30
    """Drift test: judgments before the window needed for the baseline rate."""
    drift_delta: float = 0.25
    """Drift test: the drop in the quality rate (gold correct / agrees with consensus) to detect."""
    drift_alpha: float = 0.01
    """Drift test: false alarm level; the CUSUM threshold is ln(1/alpha)."""
    reliability_min: float = 0.0
    """Flag ``low_reliability`` below this Dawid-Skene reliability (0 turns the rule off)."""
    bootstrap_samples: int = 1000
    """Bootstrap replicates for agreement and leaderboard intervals."""
    leaderboard_l2: float = 0.01
    """Gaussian prior on Bradley-Terry strengths; keeps undefeated models and split graphs finite."""

    @classmethod
    def from_json(cls, data: dict | None) -> QualitySettings:
        """Defaults overridden by the known keys of ``data`` (coerced to the field's type; bad values ignored)."""
        values = {}
        for f in fields(cls):
            if data and f.name in data:
                default = getattr(cls, f.name)
                try:
                    values[f.name] = type(default)(data[f.name])
                except (TypeError, ValueError):
                    continue
        return cls(**values)

    def as_dict(self) -> dict:
        return asdict(self)


def flag_reasons(
    stats: AnnotatorStats,
    *,
    settings: QualitySettings,
    project_median_ms: float | None = None,
    drift: dict | None = None,
    reliability: float | None = None,
) -> list[tuple[str, dict]]:
    """The (reason, evidence) pairs that fire for one annotator's statistics."""
    s = settings
    if stats.n < s.min_judgments:
        return []
    out: list[tuple[str, dict]] = []
    if (
        stats.gold_accuracy is not None
        and stats.gold_n >= s.gold_min_items
        and stats.gold_accuracy < s.gold_accuracy_min
    ):
        out.append(
            (
                REASON_LOW_GOLD,
                {
                    "gold_accuracy": stats.gold_accuracy,
                    "gold_n": stats.gold_n,
                    "threshold": s.gold_accuracy_min,
                },
            )
        )
    if stats.share_a is not None and stats.position_p_value is not None:
        lopsided = max(stats.share_a, 1.0 - stats.share_a) >= s.position_bias_share
        if lopsided and stats.position_p_value < s.position_bias_p:
            out.append(
                (
                    REASON_POSITION_BIAS,
                    {
                        "share_a": stats.share_a,
                        "p_value": stats.position_p_value,
                        "threshold_share": s.position_bias_share,
                        "threshold_p": s.position_bias_p,
                    },
                )
            )
    too_fast_share = stats.fast_share is not None and stats.fast_share > s.fast_share_max
    too_fast_median = bool(
        project_median_ms
        and stats.median_time_ms is not None
        and stats.median_time_ms < s.speed_ratio_min * project_median_ms
    )
    if too_fast_share or too_fast_median:
        out.append(
            (
                REASON_TOO_FAST,
                {
                    "fast_share": stats.fast_share,
                    "fast_ms": s.fast_ms,
                    "threshold_share": s.fast_share_max,
                    "median_time_ms": stats.median_time_ms,
                    "project_median_ms": project_median_ms,
                    "threshold_ratio": s.speed_ratio_min,
                },
            )
        )
    if (
        stats.consensus_agreement is not None
        and stats.consensus_n >= s.consensus_min_items
        and stats.consensus_agreement < s.consensus_min
    ):
        out.append(
            (
                REASON_LOW_AGREEMENT,
                {
                    "consensus_agreement": stats.consensus_agreement,
                    "consensus_n": stats.consensus_n,
                    "threshold": s.consensus_min,
                },
            )
        )
    if drift and drift.get("drift"):
        out.append((REASON_DRIFT, {k: v for k, v in drift.items() if k != "path"}))
    if reliability is not None and s.reliability_min > 0 and reliability < s.reliability_min:
        out.append((REASON_LOW_RELIABILITY, {"reliability": reliability, "threshold": s.reliability_min}))
    return out
