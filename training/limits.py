"""Upper bounds on the counts in a training config (steps, batch sizes, samples per prompt, lengths,
prompts), so that a few bytes of JSON cannot queue a run that would never end or exhaust a worker's memory.

One table maps each config field, whatever config it sits in (reward, SFT, PPO, GRPO/RLOO, prompt source,
battle, capability gate), to the setting that caps it; ``work_limits_check`` is called where a run is
created. The settings and what a client gets past them are listed in docs/security.md.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

# config field -> the setting holding its largest allowed value
WORK_LIMITS = {
    "steps": "PREFLAB_MAX_TRAINING_STEPS",
    "max_steps": "PREFLAB_MAX_TRAINING_STEPS",
    "num_train_epochs": "PREFLAB_MAX_TRAINING_EPOCHS",
    "ppo_epochs": "PREFLAB_MAX_TRAINING_EPOCHS",
    "num_iterations": "PREFLAB_MAX_TRAINING_EPOCHS",
    "batch_size": "PREFLAB_MAX_BATCH_SIZE",
    "mini_batch_size": "PREFLAB_MAX_BATCH_SIZE",
    "per_device_train_batch_size": "PREFLAB_MAX_BATCH_SIZE",
    "eval_batch_size": "PREFLAB_MAX_BATCH_SIZE",
    "gradient_accumulation_steps": "PREFLAB_MAX_BATCH_SIZE",
    "num_sample_responses": "PREFLAB_MAX_SAMPLES_PER_PROMPT",
    "num_generations": "PREFLAB_MAX_SAMPLES_PER_PROMPT",
    "max_length": "PREFLAB_MAX_SEQUENCE_TOKENS",
    "max_prompt_length": "PREFLAB_MAX_SEQUENCE_TOKENS",
    "max_new_tokens": "PREFLAB_MAX_SEQUENCE_TOKENS",
    "max_completion_length": "PREFLAB_MAX_SEQUENCE_TOKENS",
    "max_prompts": "PREFLAB_MAX_POLICY_PROMPTS",
    "items": "PREFLAB_MAX_POLICY_PROMPTS",  # a prompt source's list of prompts (its length)
    "held_out": "PREFLAB_MAX_POLICY_PROMPTS",
    "max_examples": "PREFLAB_MAX_TRAINING_EXAMPLES",
    "max_train_pairs": "PREFLAB_MAX_TRAINING_EXAMPLES",
    "overlap_k": "PREFLAB_MAX_BATTLE_OVERLAP",
    "lora_r": "PREFLAB_MAX_LORA_RANK",
    "n_trials": "PREFLAB_MAX_SWEEP_TRIALS",  # a reward-model sweep (training.rewardmodels.sweeps)
    "parallelism": "PREFLAB_MAX_SWEEP_PARALLELISM",
    "max_items": "PREFLAB_MAX_GATE_ITEMS",  # capability gate: items per task set
    "bootstrap_samples": "PREFLAB_MAX_GATE_BOOTSTRAP",
    "harness_tasks": "PREFLAB_MAX_GATE_HARNESS_TASKS",  # lm-evaluation-harness tasks of a capability gate
    "ensemble_size": "PREFLAB_MAX_ENSEMBLE_SIZE",
}


def work_limits_check(section: str, config: Any) -> None:
    """Raise ``ValidationError({"config": [...]})`` naming ``section.field``, the value, the limit and its
    setting, for every capped field of ``config`` (a dataclass or a dict) over its limit."""
    values = asdict(config) if is_dataclass(config) else dict(config or {})
    errors = []
    for name, value in values.items():
        setting = WORK_LIMITS.get(name)
        if setting is None or value is None or isinstance(value, bool):
            continue
        size = len(value) if isinstance(value, list | tuple | dict) else value
        if not isinstance(size, int | float):
            continue
        cap = getattr(settings, setting)
        if size > cap:
            what = f"{len(value)} entries" if size is not value else str(value)
            errors.append(f"{section}.{name}: {what} is over the limit of {cap} ({setting}).")
    if errors:
        raise ValidationError({"config": errors})
