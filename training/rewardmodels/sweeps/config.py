"""The typed config of a reward-model sweep: which ``RewardRunConfig`` fields to search and over what
ranges, how many trials, the objective, and the fixed settings every trial shares.

Parsed once where it enters (API, page form) by ``sweep_config_parse``: types and unknown keys by
``training.configs.parse_config`` (an unknown parameter name is an unknown field of ``SweepSpace``), then the
ranges (empty or inverted, log below zero, wrong kind) and the work limits (``training.limits``). Every
error names its field under ``config.`` and nothing is written before it passes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from training.configs import ConfigError, parse_config
from training.limits import work_limits_check
from training.rewardmodels.trainer import RewardRunConfig

#: Searchable parameter -> its kind ("float", "int" or "bool").
PARAMETER_KINDS: dict[str, str] = {
    "learning_rate": "float",
    "num_train_epochs": "int",
    "max_length": "int",
    "truncate_prompt_left": "bool",
    "use_margin": "bool",
    "lora_r": "int",
    "weight_decay": "float",
}
#: Smallest value of each numeric parameter (``lora_r`` 0: full fine-tuning, no LoRA).
PARAMETER_MIN: dict[str, float] = {
    "learning_rate": 0.0,
    "num_train_epochs": 1,
    "max_length": 8,
    "lora_r": 0,
    "weight_decay": 0.0,
}


@dataclass
class ParamRange:
    """One parameter's search range: ``low``..``high`` (``log``: sampled on a log scale), or ``choices``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[float | bool] | None = None


@dataclass
class SweepSpace:
    """The searched parameters (``RewardRunConfig`` names); a parameter left out keeps its ``base`` value."""

    learning_rate: ParamRange | None = None
    """Peak AdamW learning rate: a float range, usually ``log``."""
    num_train_epochs: ParamRange | None = None
    """Whole epochs."""
    max_length: ParamRange | None = None
    """Longest tokenised sequence; pairs longer are cut (``truncate_prompt_left``) or dropped."""
    truncate_prompt_left: ParamRange | None = None
    """Truncation side: ``choices`` of true (cut the prompt from the left) and false (drop long pairs)."""
    use_margin: ParamRange | None = None
    """Whether the loss uses the snapshot's margin column: ``choices`` of true / false."""
    lora_r: ParamRange | None = None
    """LoRA rank; 0 trains all weights (no LoRA). ``lora_alpha`` follows as 2 x rank."""
    weight_decay: ParamRange | None = None


def default_space() -> SweepSpace:
    return SweepSpace(
        learning_rate=ParamRange(low=1e-5, high=3e-4, log=True),
        num_train_epochs=ParamRange(low=1, high=3),
        max_length=ParamRange(choices=[128, 256, 512]),
        truncate_prompt_left=ParamRange(choices=[True, False]),
        use_margin=ParamRange(choices=[True, False]),
        lora_r=ParamRange(choices=[0, 8, 32]),
        weight_decay=ParamRange(low=0.0, high=0.1),
    )


def default_space_json() -> str:
    """The default search space as JSON (the start form's starting text)."""
    space = dataclasses.asdict(default_space())
    return json.dumps(
        {k: {f: v for f, v in r.items() if v not in (None, False)} for k, r in space.items()}, indent=1
    )


@dataclass
class SweepConfig:
    """A reward-model sweep (stored as JSON on ``RewardModelSweep.config``)."""

    space: SweepSpace = field(default_factory=default_space)
    """What to search (see ``SweepSpace``); at least one parameter."""
    n_trials: int = 8
    """Trials to run (cancelled trials are not counted and are run again on resume); capped by
    ``PREFLAB_MAX_SWEEP_TRIALS``."""
    parallelism: int = 1
    """Trials in flight at once, each on whichever training worker takes it; capped by
    ``PREFLAB_MAX_SWEEP_PARALLELISM`` and by ``n_trials``."""
    objective: Literal["accuracy", "loss"] = "accuracy"
    """Validation-split metric to optimise: pairwise accuracy (maximised) or Bradley-Terry log loss
    (minimised)."""
    sampler: Literal["tpe", "random"] = "tpe"
    """Optuna sampler: TPE (random for the first ``n_startup_trials``) or random search."""
    n_startup_trials: int = 4
    """Random trials before TPE starts modelling the results."""
    base: RewardRunConfig = field(default_factory=RewardRunConfig)
    """Settings every trial shares (batch size, ``max_train_pairs``, ...); searched parameters override."""
    start_from_base: bool = True
    """Make trial 0 the ``base`` config's own values (the one-click defaults unless ``base`` changes them),
    so the sweep shows what it gains over them. Skipped when a base value lies outside the space."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def searched(self) -> dict[str, ParamRange]:
        """The parameters in the space, by name."""
        return {
            name: getattr(self.space, name)
            for name in PARAMETER_KINDS
            if getattr(self.space, name) is not None
        }


def _range_errors(name: str, rng: ParamRange) -> list[tuple[str, str]]:
    """(sub-path, reason) for everything wrong with one parameter's range."""
    kind, floor = PARAMETER_KINDS[name], PARAMETER_MIN.get(name)
    errors: list[tuple[str, str]] = []
    if rng.choices is not None:
        if rng.low is not None or rng.high is not None or rng.log:
            errors.append(("", "give either low/high (and log) or choices, not both"))
        if not rng.choices:
            errors.append(("choices", "empty: give at least one value"))
        for value in rng.choices:
            if kind == "bool" and not isinstance(value, bool):
                errors.append(("choices", f"{value!r} is not true or false"))
            elif kind != "bool" and isinstance(value, bool):
                errors.append(("choices", f"{value!r} is not a number"))
            elif kind == "int" and value != int(value):
                errors.append(("choices", f"{value!r} is not a whole number"))
            elif kind != "bool" and floor is not None and value < floor:
                errors.append(("choices", f"{value!r} is below the smallest allowed value {floor:g}"))
        if len({repr(v) for v in rng.choices}) != len(rng.choices):
            errors.append(("choices", "repeats a value"))
        return errors
    if kind == "bool":
        return [("choices", "a true/false parameter takes choices (e.g. [true, false]), not a range")]
    if rng.low is None or rng.high is None:
        return [("low" if rng.low is None else "high", "required (or give choices)")]
    for bound in ("low", "high"):
        value = getattr(rng, bound)
        if not math.isfinite(value):
            errors.append((bound, f"{value!r} is not a finite number"))
        elif kind == "int" and value != int(value):
            errors.append((bound, f"{value!r} is not a whole number"))
        elif floor is not None and value < floor:
            errors.append((bound, f"{value:g} is below the smallest allowed value {floor:g}"))
    if not errors and rng.high <= rng.low:
        errors.append(("high", f"empty range: high ({rng.high:g}) must be above low ({rng.low:g})"))
    if not errors and rng.log and rng.low <= 0:
        errors.append(("low", "a log range needs low above 0"))
    return errors


def sweep_config_parse(data: dict[str, Any] | SweepConfig | None) -> SweepConfig:
    """The typed, checked sweep config; raises ``ConfigError`` (paths relative to the config) or Django's
    ``ValidationError`` (work limits: ``config`` with ``config.<path>: ... over the limit``)."""
    cfg = data if isinstance(data, SweepConfig) else parse_config(SweepConfig, data, what="sweep config")
    errors: dict[str, list[str]] = {}
    searched = cfg.searched()
    if not searched:
        errors["space"] = ["empty: search at least one parameter"]
    for name, rng in searched.items():
        for sub, reason in _range_errors(name, rng):
            errors.setdefault(".".join(p for p in ("space", name, sub) if p), []).append(reason)
    if cfg.n_trials < 1:
        errors["n_trials"] = ["must be at least 1"]
    if cfg.parallelism < 1:
        errors["parallelism"] = ["must be at least 1"]
    elif cfg.parallelism > cfg.n_trials:
        errors["parallelism"] = [f"{cfg.parallelism} is more than n_trials ({cfg.n_trials})"]
    if cfg.n_startup_trials < 0:
        errors["n_startup_trials"] = ["must be at least 0"]
    if cfg.base.max_length < 8:
        errors["base.max_length"] = ["must be at least 8"]
    if errors:
        raise ConfigError(errors, "sweep config")
    work_limits_check("config", {"n_trials": cfg.n_trials, "parallelism": cfg.parallelism})
    work_limits_check("config.base", cfg.base)
    highest = {
        name: max(rng.choices) if rng.choices is not None else rng.high
        for name, rng in searched.items()
        if PARAMETER_KINDS[name] != "bool"
    }
    work_limits_check("config.space", highest)
    return cfg


def base_params(cfg: SweepConfig) -> dict[str, Any] | None:
    """The searched parameters' values in ``cfg.base`` (``lora_r`` 0 when LoRA is off), or None if one of
    them lies outside its range or choices."""
    params = {}
    for name, rng in cfg.searched().items():
        value = getattr(cfg.base, name) if name != "lora_r" else (cfg.base.lora_r if cfg.base.use_lora else 0)
        if rng.choices is not None:
            if not any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in rng.choices):
                return None
        elif not rng.low <= value <= rng.high or (PARAMETER_KINDS[name] == "int" and value != int(value)):
            return None
        params[name] = int(value) if PARAMETER_KINDS[name] == "int" else value
    return params


def trial_config(base: RewardRunConfig, params: dict[str, Any]) -> dict[str, Any]:
    """The ``RewardRunConfig`` dict of one trial: ``base`` with the sampled ``params`` over it."""
    config = base.to_dict() if isinstance(base, RewardRunConfig) else dict(base)
    for name, value in params.items():
        if name == "lora_r":
            rank = int(value)
            config["use_lora"] = rank > 0
            if rank > 0:
                config["lora_r"], config["lora_alpha"] = rank, 2 * rank
        elif PARAMETER_KINDS[name] == "int":
            config[name] = int(value)
        else:
            config[name] = value
    return config
