"""Direct preference optimisation with TRL's ``DPOTrainer``: the policy learns from a snapshot's preference
pairs directly, with no reward model and no sampling during training.

The snapshot's preference rows (ties and both-bad rows carry no preference and are left out) go to TRL in its
preference form ``{"prompt", "chosen", "rejected"}``; prompts are chat messages when the tokenizer has a chat
template (TRL applies it, and the answers become assistant turns), else plain text. The loss pushes the
policy's log-ratio to the frozen reference (by default the start model itself, i.e. the SFT model) up on
chosen answers and down on rejected ones; ``beta`` sets how far the policy may move from the reference.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.configs import parse_config
from training.trl_runs import local_run_args

#: The ``loss_type`` values TRL 1.16's ``DPOTrainer`` accepts (``DPOConfig.loss_type``'s documentation;
#: ``tests/training/policy/test_dpo.py`` checks this list against the installed TRL).
DPO_LOSS_TYPES = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sft",
    "sigmoid_norm",
)

#: TRL log keys -> PrefLab metric names (plotted on the run page; ``loss`` shares the chart of the others).
DPO_METRIC_NAMES = {
    "loss": "loss",
    "rewards/chosen": "rewards_chosen",
    "rewards/rejected": "rewards_rejected",
    "rewards/margins": "rewards_margins",
    "rewards/accuracies": "rewards_accuracies",
    "logps/chosen": "logps_chosen",
    "logps/rejected": "logps_rejected",
    "entropy": "entropy",
    "mean_token_accuracy": "token_accuracy",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
}

SPLITS = ("train", "validation", "test")
#: Largest seed numpy (seeded by TRL) takes.
SEED_MAX = 2**32 - 1


@dataclass
class DPORunConfig:
    """Config of a DPO run (stored as JSON on the run row). The run's ``base_model`` is the start model
    (usually an SFT run's output), which is also the default reference."""

    split: str = "train"
    """Snapshot split whose preference rows are learned from (ties and both-bad rows are left out)."""
    beta: float = 0.1
    """Strength of the pull to the reference (> 0): higher keeps the policy closer. 0.1 is the usual start;
    for ``ipo`` it is the regulariser tau of the IPO paper."""
    loss_type: str = "sigmoid"
    """One of ``DPO_LOSS_TYPES``: ``sigmoid`` (the DPO paper), ``ipo``, ``hinge``, ``robust`` (needs
    ``label_smoothing`` in [0, 0.5)), ``exo_pair`` (needs ``label_smoothing`` > 0), ``apo_zero``, ...
    (see TRL's ``DPOConfig``)."""
    label_smoothing: float = 0.0
    """Assumed share of flipped labels for ``robust`` / the epsilon of ``exo_pair``; in [0, 0.5)."""
    learning_rate: float = 1e-6
    """AdamW learning rate (5e-7 .. 5e-6 for full fine-tuning; DPO needs far less than SFT)."""
    num_train_epochs: float = 1.0
    """Passes over the pairs (used when ``max_steps`` is -1)."""
    max_steps: int = -1
    """Stop after this many optimiser steps (-1: use ``num_train_epochs``)."""
    per_device_train_batch_size: int = 8
    """Preference pairs per device per step (each is two forward passes: chosen and rejected)."""
    gradient_accumulation_steps: int = 1
    """Steps accumulated before each optimiser update."""
    max_length: int = 512
    """Token budget of prompt + answer; longer sequences are cut at the end (TRL's ``keep_start``)."""
    max_prompt_length: int = 256
    """Prompt tokens kept: longer prompts are cut from the left (their end, nearest the answer, stays).
    Must be below ``max_length`` so that every pair keeps answer tokens."""
    max_examples: int | None = None
    """Use at most this many pairs (None: all)."""
    reference_model: str = ""
    """The frozen reference (a model directory or Hugging Face id); empty: the start model itself."""
    precompute_ref_log_probs: bool = False
    """Score the reference once before training and free it (less memory, one extra pass)."""
    use_chat_template: bool = True
    """Send prompts as chat messages (TRL applies the tokenizer's chat template, if it has one)."""
    warmup_steps: float = 0.1
    """Linear warmup: a fraction of the total steps (< 1) or a step count."""
    logging_steps: int = 1
    """Log the DPO metrics every this many steps."""
    seed: int | None = None
    """Seed of the data order and initialisation; None: the run's ``seed``."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DPORunConfig:
        """Typed parse (``training.configs.parse_config``): wrong types and unknown fields are refused."""
        return parse_config(cls, data, what="DPO config")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def errors(self) -> list[str]:
        """What is wrong with the values (types are the parser's job), each naming ``algorithm.<field>``."""
        out = []

        def bad(name: str, message: str) -> None:
            out.append(f"algorithm.{name}: {message}")

        if not (math.isfinite(self.beta) and self.beta > 0):
            bad("beta", f"must be a number > 0, not {self.beta}")
        if self.loss_type not in DPO_LOSS_TYPES:
            bad("loss_type", f"{self.loss_type[:40]!r} is not one of {', '.join(DPO_LOSS_TYPES)}")
        if not (math.isfinite(self.label_smoothing) and 0.0 <= self.label_smoothing < 0.5):
            bad("label_smoothing", f"must be in [0, 0.5), not {self.label_smoothing}")
        elif self.loss_type == "exo_pair" and self.label_smoothing == 0.0:
            bad("label_smoothing", "loss_type 'exo_pair' needs label_smoothing > 0 (the paper uses 1e-3)")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            bad("learning_rate", f"must be a number > 0, not {self.learning_rate}")
        if self.max_steps == 0 or self.max_steps < -1:
            bad("max_steps", f"must be -1 (use num_train_epochs) or at least 1, not {self.max_steps}")
        if self.max_steps == -1 and not (math.isfinite(self.num_train_epochs) and self.num_train_epochs > 0):
            bad("num_train_epochs", f"must be > 0 when max_steps is -1, not {self.num_train_epochs}")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps"):
            if getattr(self, name) < 1:
                bad(name, f"must be at least 1, not {getattr(self, name)}")
        if self.max_length < 2:
            bad("max_length", f"must be at least 2, not {self.max_length}")
        if not 1 <= self.max_prompt_length < self.max_length:
            bad("max_prompt_length", f"must be from 1 to max_length - 1, not {self.max_prompt_length}")
        if self.max_examples is not None and self.max_examples < 1:
            bad("max_examples", f"must be at least 1 (or null for all), not {self.max_examples}")
        if not (math.isfinite(self.warmup_steps) and self.warmup_steps >= 0):
            bad("warmup_steps", f"must be >= 0, not {self.warmup_steps}")
        if self.split not in SPLITS:
            bad("split", f"{self.split[:20]!r} is not one of {', '.join(SPLITS)}")
        if self.seed is not None and not 0 <= self.seed <= SEED_MAX:
            bad("seed", f"must be from 0 to {SEED_MAX} (or null: the run's seed), not {self.seed}")
        return out


def prompt_text(prompt: Any) -> str:
    """The text of a snapshot row's prompt (a string, or the last message of a conversation): what the
    held-out split and the battle use, as ``spec.resolve_prompts`` does for the other kinds."""
    if isinstance(prompt, list):
        return str(prompt[-1].get("content", "")) if prompt else ""
    return str(prompt)


def to_preference_rows(rows: list[dict], *, conversational: bool, cut=None) -> list[dict]:
    """TRL preference rows from snapshot rows (``prompt`` text or messages, ``chosen``/``rejected`` text).

    ``conversational``: prompts become messages and answers assistant turns (TRL applies the chat
    template); else plain text (a conversation's turns joined). ``cut(text)`` shortens a prompt's text."""
    cut = cut or (lambda text: text)
    out = []
    for row in rows:
        prompt, chosen, rejected = row.get("prompt"), row.get("chosen"), row.get("rejected")
        if prompt is None or not isinstance(chosen, str) or not isinstance(rejected, str):
            continue
        if conversational:
            messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
            messages = [dict(m) for m in messages]
            messages[-1]["content"] = cut(str(messages[-1].get("content", "")))
            out.append(
                {
                    "prompt": messages,
                    "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                }
            )
        else:
            text = (
                "\n\n".join(str(m.get("content", "")) for m in prompt) if isinstance(prompt, list) else prompt
            )
            out.append({"prompt": cut(str(text)), "chosen": chosen, "rejected": rejected})
    return out


def build_dpo_config(cfg: DPORunConfig, *, output_dir: str, seed: int):
    """TRL ``DPOConfig`` for our config, with our local-run defaults."""
    from trl import DPOConfig

    return DPOConfig(
        output_dir=output_dir,
        beta=cfg.beta,
        loss_type=[cfg.loss_type],
        label_smoothing=cfg.label_smoothing,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=cfg.max_length,
        precompute_ref_log_probs=cfg.precompute_ref_log_probs,
        warmup_steps=cfg.warmup_steps,
        logging_steps=cfg.logging_steps,
        **local_run_args(seed=seed),
    )


def train_dpo(
    *,
    base_model: str,
    rows: list[dict],
    cfg: DPORunConfig,
    seed: int,
    output_dir: str | Path,
    callbacks: list | None = None,
) -> dict[str, Any]:
    """Train ``base_model`` with DPO on snapshot preference rows and save it (with tokenizer) to
    ``output_dir``, with ``preflab_policy.json`` naming the algorithm, start model and reference."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    if cfg.max_examples:
        rows = rows[: cfg.max_examples]
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    conversational = cfg.use_chat_template and bool(getattr(tokenizer, "chat_template", None))

    def cut(text: str) -> str:  # keep the end of over-long prompts
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return tokenizer.decode(ids[-cfg.max_prompt_length :]) if len(ids) > cfg.max_prompt_length else text

    pairs = to_preference_rows(rows, conversational=conversational, cut=cut)
    if not pairs:
        raise ValueError("no preference pairs to learn from")
    model = AutoModelForCausalLM.from_pretrained(base_model)
    # A reference of its own (never the policy object); with precomputed log-probs and no other reference,
    # TRL scores the start model once before training and keeps no second copy.
    ref = None
    if cfg.reference_model or not cfg.precompute_ref_log_probs:
        ref = AutoModelForCausalLM.from_pretrained(cfg.reference_model or base_model)
    out = Path(output_dir)
    trainer = DPOTrainer(
        model=model,
        ref_model=ref,
        args=build_dpo_config(cfg, output_dir=str(out), seed=seed),
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
        callbacks=callbacks or [],
    )
    t0 = time.monotonic()
    train_out = trainer.train()
    seconds = time.monotonic() - t0
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    (out / "preflab_policy.json").write_text(
        json.dumps(
            {
                "algorithm": "dpo",
                "base_model": base_model,
                "reference_model": cfg.reference_model or base_model,
                "config": cfg.to_dict(),
                "seed": seed,
            },
            indent=2,
        )
    )
    return {
        "pairs": len(pairs),
        "conversational": conversational,
        "steps": trainer.state.global_step,
        "train_loss": float(train_out.training_loss),
        "train_seconds": seconds,
        "log_history": trainer.state.log_history,
    }
