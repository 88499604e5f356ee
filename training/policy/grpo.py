"""GRPO / RLOO with TRL's trainers, as alternative policy algorithms in the same job framework.

Both are critic-free: they sample ``num_generations`` responses per prompt and use the group's rewards as the
baseline (GRPO: group-normalised advantages; RLOO: leave-one-out mean). The reward is any PrefLab reward
function (HTTP endpoint, in-process reward model, rule) adapted by ``rewards.as_trl_reward``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.configs import parse_config
from training.policy.rewards import RewardFn, as_trl_reward
from training.tracking import Tracking, tracking_env
from training.trl_runs import local_run_args

#: TRL log keys -> PrefLab metric names (the same names PPO logs, so plots and detectors work for both).
TRL_METRIC_NAMES = {
    "reward": "reward_mean",
    "reward_std": "reward_std",
    "kl": "kl",
    "entropy": "entropy",
    "loss": "policy_loss",
    "completions/mean_length": "response_length_mean",
    "clip_ratio/region_mean": "clip_fraction",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
    "frac_reward_zero_std": "frac_reward_zero_std",
}


@dataclass
class GroupRLConfig:
    """Config of a GRPO or RLOO run (stored as JSON on the run row)."""

    max_steps: int = 50
    """Optimiser steps."""
    learning_rate: float = 1e-6
    """AdamW learning rate."""
    per_device_train_batch_size: int = 8
    """Completions per device per step (must be divisible by ``num_generations``)."""
    num_generations: int = 4
    """Completions sampled per prompt (the group)."""
    max_prompt_length: int = 256
    """Prompt tokens kept (longer prompts are cut from the left before training)."""
    max_completion_length: int = 64
    """Maximum response length in tokens."""
    temperature: float = 1.0
    """Sampling temperature."""
    beta: float = 0.04
    """KL coefficient to the reference model (0 disables the reference)."""
    epsilon: float = 0.2
    """Clip range of the importance ratio."""
    num_iterations: int = 1
    """Optimisation passes per generated batch (mu in the GRPO paper)."""
    use_chat_template: bool = True
    """Send prompts as chat messages (TRL applies the tokenizer's chat template)."""
    logging_steps: int = 1
    """Log metrics every this many steps."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GroupRLConfig:
        """Typed parse (``training.configs.parse_config``): wrong types and unknown fields are refused."""
        return parse_config(cls, data, what="GRPO/RLOO config")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_trl_config(algorithm: str, cfg: GroupRLConfig, *, output_dir: str, seed: int, tracking=None):
    """The TRL ``GRPOConfig`` / ``RLOOConfig`` for our config (with our local-run defaults)."""
    from trl import GRPOConfig, RLOOConfig

    cls = {"grpo": GRPOConfig, "rloo": RLOOConfig}[algorithm]
    return cls(
        output_dir=output_dir,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        beta=cfg.beta,
        epsilon=cfg.epsilon,
        num_iterations=cfg.num_iterations,
        logging_steps=cfg.logging_steps,
        **local_run_args(seed=seed, tracking=tracking),
    )


def train_group_rl(
    *,
    algorithm: str,
    model_dir: str,
    prompts: list[str],
    reward_fn: RewardFn,
    cfg: GroupRLConfig,
    seed: int,
    output_dir: str | Path,
    callbacks: list | None = None,
    tracking: Tracking | None = None,
) -> dict[str, Any]:
    """Train ``model_dir`` with TRL's GRPO or RLOO trainer on ``prompts`` and save it to ``output_dir``;
    ``tracking`` (``training.tracking``) also reports to TensorBoard / MLflow."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer, RLOOTrainer

    if algorithm not in ("grpo", "rloo"):
        raise ValueError(f"unknown algorithm {algorithm!r}")
    if not prompts:
        raise ValueError("no prompts to train on")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    conversational = cfg.use_chat_template and bool(getattr(tokenizer, "chat_template", None))

    def cut(p: str) -> str:  # keep the end of over-long prompts
        ids = tokenizer(p, add_special_tokens=False)["input_ids"]
        return tokenizer.decode(ids[-cfg.max_prompt_length :]) if len(ids) > cfg.max_prompt_length else p

    rows = [{"prompt": [{"role": "user", "content": cut(p)}] if conversational else cut(p)} for p in prompts]
    trainer_cls = GRPOTrainer if algorithm == "grpo" else RLOOTrainer
    with tracking_env(tracking):
        trainer = trainer_cls(
            model=AutoModelForCausalLM.from_pretrained(model_dir),
            reward_funcs=as_trl_reward(reward_fn),
            args=build_trl_config(algorithm, cfg, output_dir=str(output_dir), seed=seed, tracking=tracking),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            callbacks=callbacks or [],
        )
        t0 = time.monotonic()
        trainer.train()
        seconds = time.monotonic() - t0
    out = Path(output_dir)
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    (out / "preflab_policy.json").write_text(
        json.dumps({"algorithm": algorithm, "base_model": model_dir, "config": cfg.to_dict(), "seed": seed})
    )
    history = [
        {"step": h["step"], **{ours: h[theirs] for theirs, ours in TRL_METRIC_NAMES.items() if theirs in h}}
        for h in trainer.state.log_history
        if "step" in h and any(theirs in h for theirs in TRL_METRIC_NAMES)
    ]
    return {
        "steps": trainer.state.global_step,
        "train_seconds": seconds,
        "history": history,
        "trainer": trainer,
    }
