"""The filter spec of a dataset snapshot: a documented, validated dataclass stored as JSON on the row."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_date, parse_datetime

TIE_MODES = ("drop", "margin_zero", "tie_aware")
RANKING_PAIR_MODES = ("all_pairs", "best_vs_rest", "adjacent")
COMBINE_MODES = ("majority", "reliability_weighted", "per_vote")
MARGIN_MODES = ("off", "strength")
SPLIT_NAMES = ("train", "validation", "test")
# Judgment strength (1 slightly, 2 clearly, 3 much better) -> Bradley-Terry margin. A vote with no strength
# gets ``default_margin``. The loss TRL uses is -log sigmoid(r_chosen - r_rejected - margin).
DEFAULT_MARGIN_BY_STRENGTH = {"1": 0.5, "2": 1.0, "3": 2.0}
# Ids are PostgreSQL bigints; a seed is kept to 64 bits so every RNG that may take it accepts it.
MAX_ID = 2**63 - 1
MAX_SEED = 2**63 - 1
# Optional fields left out of ``canonical_json`` while None (see there).
_OMITTED_WHEN_UNSET = ("min_reliability",)


@dataclass
class SnapshotSpec:
    """What goes into a snapshot and how judgments become Bradley-Terry pairs.

    The same spec on the same judgments always gives the same rows, split and content hash.
    """

    projects: list[int] = field(default_factory=list)
    """Project ids to export (at least one; all must exist and be visible to the creator)."""
    date_from: str | None = None
    """Keep judgments created at or after this ISO date/datetime (UTC). None: no lower bound."""
    date_to: str | None = None
    """Keep judgments created before this ISO date/datetime (exclusive; a bare date means its midnight)."""
    min_agreement: float = 0.0
    """Drop a pair when the (weighted) share of votes agreeing with its winning label is below this."""
    exclude_flagged: bool = True
    """Leave out judgments of annotators with an open quality flag in that project (quarantine)."""
    exclude_gold: bool = True
    """Leave out gold (known-answer) tasks. Swapped repeat tasks are always left out: they re-ask the same
    annotator the same pair to measure self-consistency, so keeping them would double that annotator's vote."""
    ties: str = "drop"
    """Tie answers: ``drop``; ``margin_zero`` (keep, margin 0, label_type "tie" in meta); ``tie_aware`` (same
    rows as margin_zero, recorded so a tie-aware loss reads label_type from meta/). Kept neutral rows are
    for analysis: reward training (no tie-aware loss yet), SFT and evaluation leave them out, since their
    chosen/rejected orientation is arbitrary."""
    both_bad: str = "drop"
    """"Both bad" answers, with the same three modes as ``ties`` (label_type "both_bad")."""
    ranking_pairs: str = "all_pairs"
    """Which pairs of a K-way ranking enter: ``all_pairs``, ``best_vs_rest`` (top item against each other) or
    ``adjacent`` (neighbours in the ranked order)."""
    combine: str = "majority"
    """Several votes on one pair: ``majority`` (one row, the most-voted label), ``reliability_weighted``
    (one row, votes weighted by annotator reliability; unknown reliability weighs 1) or ``per_vote``
    (one row per vote)."""
    min_reliability: float | None = None
    """Drop the votes of annotators whose Dawid-Skene reliability in that project (the probability they give
    a task's true answer, estimated over all the project's votes) is below this, whatever ``combine`` is.
    Annotators with no estimate and adjudications are kept. None: drop nobody. Counted as
    ``votes_dropped_low_reliability``."""
    margin: str = "off"
    """``off``: no margin (TRL's plain loss); ``strength``: margin from ``margin_by_strength``."""
    margin_by_strength: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MARGIN_BY_STRENGTH))
    """Strength ("1", "2", "3") -> margin; a combined row takes the weighted mean over its winning votes."""
    default_margin: float = 0.0
    """Margin of a preference vote without a strength when ``margin`` is ``strength``."""
    split: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1})
    """Shares of prompts per split (train, validation, test); must sum to 1. Split is by prompt."""
    seed: int = 42
    """Seed of the prompt shuffle that assigns prompts to splits."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SnapshotSpec:
        """Build and validate a spec from JSON; unknown keys or bad values raise ``ValidationError``."""
        data = dict(data or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValidationError({k: ["Unknown spec field."] for k in unknown})
        spec = cls(**data)
        spec.validate()
        return spec

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def canonical_json(self) -> str:
        """The spec as sorted, compact JSON (what the content hash covers). Options added later are left out
        while unset, so a spec that does not use them hashes as it did before they existed."""
        data = self.to_dict()
        for name in _OMITTED_WHEN_UNSET:
            if data.get(name) is None:
                data.pop(name, None)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def validate(self) -> None:
        """Normalise types and raise ``ValidationError`` {field: [reason]} for impossible values."""
        errors: dict[str, list[str]] = {}

        def bad(name: str, reason: str) -> None:
            errors.setdefault(name, []).append(reason)

        if not isinstance(self.projects, list | tuple) or not self.projects:
            bad("projects", "Give at least one project id.")
        else:
            try:
                self.projects = sorted({_integer(p) for p in self.projects})
                if not all(1 <= p <= MAX_ID for p in self.projects):
                    bad("projects", f"Project ids are between 1 and {MAX_ID}.")
            except (TypeError, ValueError):
                bad("projects", "Project ids must be integers.")
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None and _parse_when(value) is None:
                bad(name, "Not an ISO 8601 date or datetime.")
        dates_ok = not errors.get("date_from") and not errors.get("date_to")
        if dates_ok and self.date_from and self.date_to and self.when("date_from") >= self.when("date_to"):
            bad("date_to", "Must be after date_from.")
        try:
            self.min_agreement = _finite(self.min_agreement)
            if not 0.0 <= self.min_agreement <= 1.0:
                bad("min_agreement", "Must be between 0 and 1.")
        except (TypeError, ValueError):
            bad("min_agreement", "Must be a number.")
        if self.min_reliability is not None:
            try:
                self.min_reliability = _finite(self.min_reliability)
                if not 0.0 <= self.min_reliability <= 1.0:
                    bad("min_reliability", "Must be between 0 and 1 (or null for no reliability filter).")
            except (TypeError, ValueError):
                bad("min_reliability", "Must be a number between 0 and 1, or null.")
        for name, allowed in (
            ("ties", TIE_MODES),
            ("both_bad", TIE_MODES),
            ("ranking_pairs", RANKING_PAIR_MODES),
            ("combine", COMBINE_MODES),
            ("margin", MARGIN_MODES),
        ):
            if getattr(self, name) not in allowed:
                bad(name, f"Must be one of {', '.join(allowed)}.")
        for name in ("exclude_flagged", "exclude_gold"):
            if not isinstance(getattr(self, name), bool):
                bad(name, "Must be true or false.")
        try:
            self.margin_by_strength = {
                str(_integer(k)): _finite(v) for k, v in dict(self.margin_by_strength).items()
            }
            if not set(self.margin_by_strength) <= {"1", "2", "3"}:
                bad("margin_by_strength", "Keys must be strengths 1, 2 or 3.")
        except (TypeError, ValueError):
            bad("margin_by_strength", "Must map strength 1-3 to finite numbers.")
        try:
            self.default_margin = _finite(self.default_margin)
        except (TypeError, ValueError):
            bad("default_margin", "Must be a finite number.")
        try:
            split = {str(k): _finite(v) for k, v in dict(self.split).items()}
            if set(split) != set(SPLIT_NAMES):
                bad("split", "Give exactly train, validation and test shares.")
            elif any(v < 0 for v in split.values()):
                bad("split", "Shares cannot be negative.")
            elif abs(sum(split.values()) - 1.0) > 1e-6:
                bad("split", f"Shares must sum to 1 (they sum to {sum(split.values()):g}).")
            elif split["train"] <= 0:
                bad("split", "The train share must be above 0.")
            else:
                self.split = {k: split[k] for k in SPLIT_NAMES}
        except (TypeError, ValueError):
            bad("split", "Must map train/validation/test to finite numbers.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            bad("seed", "Must be an integer.")
        elif not 0 <= self.seed <= MAX_SEED:
            bad("seed", f"Must be between 0 and {MAX_SEED}.")
        if errors:
            raise ValidationError(errors)

    def when(self, name: str) -> dt.datetime | None:
        """``date_from``/``date_to`` as an aware UTC datetime (None when unset)."""
        value = getattr(self, name)
        return _parse_when(value) if value else None

    @property
    def keeps_neutral_rows(self) -> bool:
        """True when tie or both-bad rows are kept (they then carry margin 0)."""
        return self.ties != "drop" or self.both_bad != "drop"

    @property
    def has_margin(self) -> bool:
        """Whether TRL rows carry a ``margin`` key: margin mapping on, or neutral rows kept (margin 0 makes
        the loss plain Bradley-Terry for preference rows, so the two agree)."""
        return self.margin != "off" or self.keeps_neutral_rows


def _finite(value: Any) -> float:
    """A JSON number (or numeric text) as a finite float; booleans, NaN and infinities raise ValueError
    (PostgreSQL's jsonb refuses NaN, and no share, margin or threshold means anything at infinity)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _integer(value: Any) -> int:
    """An integer id or key; booleans and fractional numbers raise ValueError (int(1.5) would truncate)."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("not an integer")
    return int(value)


def _parse_when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            day = parse_date(value)
            if day is None:
                return None
            parsed = dt.datetime.combine(day, dt.time())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:  # an offset at the calendar's edge (9999-12-31T23:00-05:00) has no UTC time
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        return None
