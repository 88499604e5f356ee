"""The JSON stored in ``TrainingRun.config`` for policy runs, and how its parts are resolved.

``{"algorithm": {...}, "reward": {...}, "prompts": {...}, "battle": {...}, "gate": {...}, "critic_model": ""}``
where ``algorithm`` holds the fields of ``SFTRunConfig`` (sft), ``PPOConfig`` (ppo), ``GroupRLConfig``
(grpo/rloo) or ``DPORunConfig`` (dpo). ``PolicyBattleSpec`` is the config of a battle among finished policy runs.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.configs import parse_config
from training.policy.battle import BattleConfig
from training.policy.capability.config import GateConfig
from training.policy.dpo import DPORunConfig
from training.policy.grpo import GroupRLConfig
from training.policy.ppo import PPOConfig
from training.policy.rewards import LENGTH_BONUS_MAX, RewardFn, reward_from_spec
from training.policy.sft import SFTRunConfig

RULE_PARAMS = ("keyword", "cap", "target", "scale", "length_bonus")
ALGORITHM_CONFIGS = {
    "sft": SFTRunConfig,
    "ppo": PPOConfig,
    "grpo": GroupRLConfig,
    "rloo": GroupRLConfig,
    "dpo": DPORunConfig,
}


def algorithm_config(kind: str, data: dict[str, Any] | None):
    """The config dataclass of a run kind from JSON (typed parse: wrong types and unknown fields refused)."""
    return parse_config(ALGORITHM_CONFIGS[kind], data, what=f"{kind} config")


@dataclass
class PromptSource:
    """Where a policy run's prompts come from."""

    source: str = "project"
    """``project`` (the run project's prompts), ``snapshot`` (prompts of a snapshot split) or ``list``."""
    items: list[str] = field(default_factory=list)
    """The prompts when ``source`` is ``list``."""
    split: str = "train"
    """Snapshot split when ``source`` is ``snapshot``."""
    max_prompts: int = 512
    """Use at most this many prompts (after de-duplication)."""


@dataclass
class RewardSource:
    """Where a policy run's rewards come from (``type``) and that source's settings."""

    type: str = "active"
    """``active`` (the project's active reward model, in process), ``registry`` (``reward_model_id``),
    ``http`` (a served reward endpoint at ``url``) or ``rule`` (``name``: keyword, length, vowels)."""
    normalize: bool = False
    """Apply the reward model's stored mean/std (model and HTTP rewards)."""
    reward_model_id: int | None = None
    url: str = ""
    token_env: str = "PREFLAB_REWARD_TOKEN"
    """Name of the environment variable holding the HTTP reward's bearer token (never the token itself)."""
    token: str = ""
    """Refused when not empty: a run row must not store a secret (use ``token_env``)."""
    timeout_s: float = 60.0
    name: str = ""
    """Rule name (``type: rule``)."""
    keyword: str | None = None
    cap: int | None = None
    target: float | None = None
    scale: float | None = None
    length_bonus: float | None = None
    """Rule rewards: add ``length_bonus * len(response)`` (characters), a deliberate length bias for the
    reward-hacking experiment; 0 to ``LENGTH_BONUS_MAX`` (1.0), refused on other reward types."""

    def errors(self) -> list[str]:
        """Settings out of range (empty when valid)."""
        if self.length_bonus is None:
            return []
        if self.type != "rule":
            return ["reward.length_bonus applies to rule rewards only"]
        if not (math.isfinite(self.length_bonus) and 0.0 <= self.length_bonus <= LENGTH_BONUS_MAX):
            return [f"reward.length_bonus must be between 0 and {LENGTH_BONUS_MAX}, not {self.length_bonus}"]
        return []


@dataclass
class PolicyRunSpec:
    algorithm: dict[str, Any] = field(default_factory=dict)
    """The fields of the kind's config dataclass (``ALGORITHM_CONFIGS``), parsed by ``algorithm_config``."""
    reward: RewardSource = field(default_factory=RewardSource)
    prompts: PromptSource = field(default_factory=PromptSource)
    battle: BattleConfig = field(default_factory=BattleConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    """Capability regression benchmarks queued when a PPO / GRPO / RLOO / DPO run succeeds."""
    critic_model: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PolicyRunSpec:
        """Typed parse of the whole spec, its sub-configs included (``algorithm`` stays a dict here: its
        shape depends on the run kind)."""
        return parse_config(cls, data, what="policy run config")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


BATTLE_PROMPT_SOURCES = ("held_out", "list")


@dataclass
class BattlePrompts:
    """The prompts every model answers."""

    source: str = "held_out"
    """``held_out``: the prompts every run kept out of its training (the intersection of the runs'
    ``held_out_prompts``), or ``list``: ``items``."""
    items: list[str] = field(default_factory=list)
    """The prompts when ``source`` is ``list`` (and, on the stored row, the resolved prompts)."""


@dataclass
class PolicyBattleSpec:
    """Config of a battle run: which runs, which prompts, how answers are generated and scored."""

    runs: list[int] = field(default_factory=list)
    """The policy runs compared (filled in from the request's ``run_ids``)."""
    prompts: BattlePrompts = field(default_factory=BattlePrompts)
    battle: BattleConfig = field(default_factory=BattleConfig)
    """Generation and project settings; ``held_out`` caps the number of prompts."""
    reward: RewardSource = field(default_factory=RewardSource)
    """Scores the answers for the report (default: the project's active reward model)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PolicyBattleSpec:
        return parse_config(cls, data, what="battle config")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_prompts(run, spec: PolicyRunSpec) -> list[str]:
    """The run's prompt texts, de-duplicated, in a stable order."""
    src = spec.prompts
    if src.source == "list":
        texts = list(src.items)
    elif src.source == "snapshot":
        from training.datasets.reader import read_snapshot_split

        if run.snapshot is None:
            raise ValueError("prompt source 'snapshot' needs the run's snapshot")
        rows, _ = read_snapshot_split(run.snapshot.artifact_dir, src.split)
        texts = [r["prompt"] if isinstance(r["prompt"], str) else r["prompt"][-1]["content"] for r in rows]
    elif src.source == "project":
        from annotation.models import Prompt

        if run.project is None:
            raise ValueError("prompt source 'project' needs the run's project")
        texts = list(Prompt.objects.filter(project=run.project).order_by("id").values_list("text", flat=True))
    else:
        raise ValueError(f"unknown prompt source {src.source!r}")
    seen: dict[str, None] = {}
    for t in texts:
        if t and t.strip():
            seen.setdefault(t, None)
    return list(seen)[: src.max_prompts]


def split_held_out(prompts: list[str], held_out: int, seed: int) -> tuple[list[str], list[str]]:
    """(train, held-out): ``held_out`` prompts chosen by a seeded shuffle; at least one stays for training."""
    order = list(range(len(prompts)))
    random.Random(seed).shuffle(order)
    n = min(held_out, max(0, len(prompts) - 1))
    held = set(order[:n])
    return [p for i, p in enumerate(prompts) if i not in held], [
        p for i, p in enumerate(prompts) if i in held
    ]


def resolve_reward(run, reward: RewardSource) -> tuple[RewardFn, dict[str, Any]]:
    """A reward function for the run and a description of it (no secrets) for the run summary.

    ``{"type": "active"}`` (the project's active reward model, in process), ``{"type": "registry",
    "reward_model_id": N}``, ``{"type": "http", "url": ..., "token_env": "PREFLAB_REWARD_TOKEN"}``, or
    ``{"type": "rule", "name": ...}``. ``"normalize": true`` applies the RM's stored mean/std.
    """
    from training.models import RewardModel

    spec = {k: v for k, v in asdict(reward).items() if v is not None}
    kind = reward.type
    normalize = reward.normalize
    if kind in ("active", "registry"):
        if kind == "active":
            rm = (
                RewardModel.objects.filter(project=run.project, is_active=True).first()
                if run.project
                else None
            )
            if rm is None:
                raise ValueError("the run's project has no active reward model; promote one or pick one")
        else:
            rm = RewardModel.objects.get(pk=spec["reward_model_id"])
        model_spec = {
            "type": "model",
            "artifact_dir": rm.artifact_dir,
            "max_length": rm.max_length,
            "reward_mean": rm.reward_mean if normalize else None,
            "reward_std": rm.reward_std if normalize else None,
        }
        return reward_from_spec(model_spec), {"type": kind, "reward_model_id": rm.pk, "version": rm.version}
    if kind == "http":
        token = spec.get("token") or os.environ.get(spec.get("token_env", "PREFLAB_REWARD_TOKEN"), "")
        fn = reward_from_spec({"type": "http", "url": spec["url"], "token": token, "normalize": normalize})
        return fn, {"type": "http", "url": spec["url"], "normalize": normalize}
    if kind == "rule":
        rule = {"type": "rule", "name": reward.name}
        rule |= {k: v for k, v in spec.items() if k in RULE_PARAMS}
        return reward_from_spec(rule), dict(rule)
    raise ValueError(f"unknown reward type {kind!r}")


def battle_config(spec: PolicyRunSpec) -> BattleConfig:
    return spec.battle


def sft_base_model(model_dir: str) -> str:
    """The pre-SFT model of an SFT output directory (from its ``preflab_sft.json``), or ""."""
    card = Path(model_dir) / "preflab_sft.json"
    if card.is_file():
        return json.loads(card.read_text()).get("base_model", "")
    return ""
