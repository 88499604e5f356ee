"""The capability gate's config: which task sets, how many items, how long the answers, how many bootstrap
resamples. Stored as the ``gate`` section of a policy run's spec and as the config of a ``gate`` run.

Parsed by ``training.configs.parse_config`` (typed, unknown keys refused); ``errors()`` adds the range and
registry checks, and ``training.limits`` caps the counts. All three run where a run is created, so a bad
config is a 400 naming the field and no row, never a failure inside the worker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.configs import parse_config
from training.policy.capability.harness import (
    MAX_TASK_NAME_CHARS,
    TASK_NAME_PATTERN,
    harness_installed,
)
from training.policy.capability.tasksets import TASK_SET_NAMES


@dataclass
class GateConfig:
    """Capability regression benchmarks run after a policy run (layer 1 of the evaluation gate)."""

    enabled: bool = True
    """Queue the capability gate when the policy run succeeds."""
    sets: list[str] = field(default_factory=lambda: list(TASK_SET_NAMES))
    """Task sets to run, by name (``instruction``, ``arithmetic``, ``factual``, ``format``)."""
    max_items: int = 12
    """Items per set (the first N, in the file's fixed order; a set has 36)."""
    max_new_tokens: int = 48
    """Answer length limit in tokens (greedy decoding); an answer cut here fails the format set."""
    batch_size: int = 8
    """Prompts per generate call."""
    bootstrap_samples: int = 1000
    """Resamples of the 95% percentile-bootstrap interval of each score (0: no interval)."""
    seed: int = 0
    """Seed of the bootstrap resampling."""
    harness_tasks: list[str] = field(default_factory=list)
    """lm-evaluation-harness tasks to run after our sets (``gsm8k``, ``ifeval``, a custom task's name), each
    on the first ``max_items`` documents and scored on its primary metric; rows ``harness:<task>``. Empty
    (the default): the harness is not loaded. Needs the ``harness`` extra (``pip install -e '.[harness]'``)."""
    harness_include_path: str | None = None
    """A server directory of custom harness task YAMLs (``TaskManager(include_path=...)``), under one of
    ``PREFLAB_HARNESS_TASK_ROOTS``."""
    harness_include_defaults: bool = True
    """Index the harness's own tasks too; false: only those under ``harness_include_path``, which skips
    building the default index (about a minute on 2 cores)."""

    def errors(self) -> list[str]:
        """Problems with the values, each naming its field as ``gate.<field>`` (empty when valid)."""
        out = []
        unknown = [s for s in self.sets if s not in TASK_SET_NAMES]
        if unknown:
            out.append(
                f"gate.sets: unknown task set {', '.join(map(repr, unknown[:5]))}; "
                f"known: {', '.join(TASK_SET_NAMES)}"
            )
        if len(set(self.sets)) != len(self.sets):
            out.append("gate.sets: a task set is listed twice")
        if self.enabled and not self.sets and not self.harness_tasks:
            out.append("gate.sets: name at least one task set or harness task (or set enabled to false)")
        for name in ("max_items", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                out.append(f"gate.{name}: must be at least 1, not {getattr(self, name)}")
        if self.bootstrap_samples < 0:
            out.append(f"gate.bootstrap_samples: must be 0 or more, not {self.bootstrap_samples}")
        if self.seed < 0:
            out.append(f"gate.seed: must be 0 or more, not {self.seed}")
        return out + self._harness_errors()

    def _harness_errors(self) -> list[str]:
        from django.conf import settings

        out = []
        bad = [
            t
            for t in self.harness_tasks
            if len(t) > MAX_TASK_NAME_CHARS or not TASK_NAME_PATTERN.fullmatch(t)
        ]
        if bad:
            out.append(
                f"gate.harness_tasks: {', '.join(repr(t[:40]) for t in bad[:5])} is not a task name "
                f"(letters, digits, '_', '-', '.'; at most {MAX_TASK_NAME_CHARS} characters)"
            )
        if len(set(self.harness_tasks)) != len(self.harness_tasks):
            out.append("gate.harness_tasks: a task is listed twice")
        if self.harness_include_path is not None:
            path = Path(self.harness_include_path).resolve()
            roots = settings.PREFLAB_HARNESS_TASK_ROOTS
            if not path.is_dir():
                out.append(f"gate.harness_include_path: {self.harness_include_path!r} is not a directory")
            elif not any(path == root or path.is_relative_to(root) for root in roots):
                # Task YAMLs can name Python functions (!function): only directories an operator chose.
                out.append(
                    "gate.harness_include_path: must lie under a harness task root "
                    "(PREFLAB_HARNESS_TASK_ROOTS), symlinks resolved"
                )
        if not self.harness_tasks:
            return out
        if not self.harness_include_defaults and self.harness_include_path is None:
            out.append(
                "gate.harness_include_defaults: false needs gate.harness_include_path (no task would be known)"
            )
        if not harness_installed():
            out.append(
                "gate.harness_tasks: lm-evaluation-harness is not installed on this server; "
                "install the harness extra (pip install -e '.[harness]')"
            )
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GateConfig:
        return parse_config(cls, data, what="gate config")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
