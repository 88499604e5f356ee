"""Supervised fine-tuning with TRL's ``SFTTrainer``: prompt/response pairs from a snapshot's chosen
responses or an imported demonstration file, the chat template applied, loss on completion tokens only.

The data goes to TRL in its conversational prompt-completion form (``prompt`` = the user turn(s),
``completion`` = the assistant turn) with ``completion_only_loss=True``: TRL renders both through the chat
template and sets the labels of every prompt token to -100, so only response tokens are learned.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.configs import parse_config
from training.tracking import Tracking, tracking_env
from training.trl_runs import local_run_args


@dataclass
class SFTRunConfig:
    """Config of an SFT run (stored as JSON on the run row)."""

    source: str = "snapshot"
    """Where the demonstrations come from: ``snapshot`` (the chosen responses of the run's snapshot) or
    ``demonstrations`` (a JSONL file at ``demonstrations_path``)."""
    demonstrations_path: str = ""
    """JSONL of demonstrations: ``{"prompt", "response"}`` (or ``completion``), prompt as text or messages."""
    split: str = "train"
    """Snapshot split to learn from."""
    max_examples: int | None = None
    """Use at most this many demonstrations (None: all)."""
    use_chat_template: bool = True
    """Render prompt and response with the tokenizer's chat template (plain concatenation if it has none)."""
    learning_rate: float = 2e-5
    """AdamW learning rate (1e-5 .. 5e-5 for full fine-tuning)."""
    num_train_epochs: float = 1.0
    """Passes over the data (1-3; more overfits)."""
    max_steps: int = -1
    """Stop after this many optimiser steps (-1: use ``num_train_epochs``)."""
    per_device_train_batch_size: int = 8
    """Demonstrations per device per step."""
    gradient_accumulation_steps: int = 1
    """Steps accumulated before each optimiser update."""
    max_length: int = 512
    """Token budget of prompt + response; longer examples are truncated."""
    warmup_steps: float = 0.05
    """Linear warmup: a fraction of the total steps (< 1) or a step count."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    logging_steps: int = 5
    """Log loss / token accuracy every this many steps."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SFTRunConfig:
        """Typed parse (``training.configs.parse_config``): wrong types and unknown fields are refused."""
        return parse_config(cls, data, what="SFT config")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(x: Any) -> str:
    if isinstance(x, list):  # messages
        return "\n\n".join(str(m.get("content", "")) for m in x)
    return str(x)


def demonstrations_from_rows(rows: list[dict]) -> list[dict]:
    """Normalise rows to ``{"prompt": str | messages, "response": str}``.

    Accepts snapshot rows (``prompt``/``chosen``), demonstration rows (``prompt``/``response`` or
    ``completion``) and chat rows (``messages`` ending with an assistant turn)."""
    out = []
    for row in rows:
        if "messages" in row and row["messages"] and row["messages"][-1].get("role") == "assistant":
            out.append({"prompt": row["messages"][:-1], "response": row["messages"][-1]["content"]})
            continue
        response = row.get("response", row.get("completion", row.get("chosen")))
        if response is None or "prompt" not in row:
            continue
        if isinstance(response, list):  # conversational completion: the assistant content
            response = response[-1].get("content", "") if response else ""
        out.append({"prompt": row["prompt"], "response": str(response)})
    return [d for d in out if d["response"].strip()]


def read_demonstrations(path: str | Path) -> list[dict]:
    with Path(path).open(encoding="utf-8") as fh:
        return demonstrations_from_rows([json.loads(line) for line in fh if line.strip()])


def to_trl_rows(demos: list[dict], *, conversational: bool) -> list[dict]:
    """TRL prompt-completion rows: conversational (chat template applied by TRL) or plain text."""
    rows = []
    for d in demos:
        if conversational:
            prompt = (
                d["prompt"] if isinstance(d["prompt"], list) else [{"role": "user", "content": d["prompt"]}]
            )
            rows.append({"prompt": prompt, "completion": [{"role": "assistant", "content": d["response"]}]})
        else:
            rows.append({"prompt": _text(d["prompt"]), "completion": d["response"]})
    return rows


def build_sft_config(cfg: SFTRunConfig, *, output_dir: str, seed: int, tracking=None):
    """TRL ``SFTConfig``: completion-only loss, with our local-run defaults."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=output_dir,
        completion_only_loss=True,
        max_length=cfg.max_length,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        logging_steps=cfg.logging_steps,
        **local_run_args(seed=seed, tracking=tracking),
    )


def train_sft(
    *,
    base_model: str,
    demonstrations: list[dict],
    cfg: SFTRunConfig,
    seed: int,
    output_dir: str | Path,
    callbacks: list | None = None,
    tracking: Tracking | None = None,
) -> dict[str, Any]:
    """Fine-tune ``base_model`` on demonstrations and save it (with tokenizer) to ``output_dir``; ``tracking``
    (``training.tracking``) also reports to TensorBoard / MLflow."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    if not demonstrations:
        raise ValueError("no demonstrations to learn from")
    if cfg.max_examples:
        demonstrations = demonstrations[: cfg.max_examples]
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    conversational = cfg.use_chat_template and bool(getattr(tokenizer, "chat_template", None))
    dataset = Dataset.from_list(to_trl_rows(demonstrations, conversational=conversational))
    model = AutoModelForCausalLM.from_pretrained(base_model)
    out = Path(output_dir)
    with tracking_env(tracking):
        trainer = SFTTrainer(
            model=model,
            args=build_sft_config(cfg, output_dir=str(out), seed=seed, tracking=tracking),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=callbacks or [],
        )
        t0 = time.monotonic()
        train_out = trainer.train()
        seconds = time.monotonic() - t0
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    (out / "preflab_sft.json").write_text(
        json.dumps({"base_model": base_model, "config": cfg.to_dict(), "seed": seed}, indent=2)
    )
    return {
        "examples": len(demonstrations),
        "conversational": conversational,
        "steps": trainer.state.global_step,
        "train_loss": float(train_out.training_loss),
        "train_seconds": seconds,
        "log_history": trainer.state.log_history,
        "trainer": trainer,
    }
