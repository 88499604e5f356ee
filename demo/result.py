"""What the demo did, stage by stage: filled in by ``demo.pipeline``, read by ``demo.report``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DemoResult:
    """What each stage did (ids, counts, metrics) and how long it took."""

    project_id: int | None = None
    project_name: str = ""
    source: str = ""
    imported: dict[str, Any] = field(default_factory=dict)
    judgments: int = 0
    judgments_by_annotator: dict[str, int] = field(default_factory=dict)
    agreement: dict[str, Any] = field(default_factory=dict)
    annotators: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    """Flags the quality rules raised (reason per annotator)."""
    flags_cleared: list[dict[str, Any]] = field(default_factory=list)
    """Flags the simulated reviewer cleared as false alarms."""
    snapshot: dict[str, Any] = field(default_factory=dict)
    reward_run_id: int | None = None
    reward_model: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    promotion: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    policy_model: str = ""
    ppo: dict[str, Any] = field(default_factory=dict)
    policy_version: dict[str, Any] = field(default_factory=dict)
    """The registered policy version and its promotion-gate verdict (checked, not promoted)."""
    seconds: dict[str, float] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
