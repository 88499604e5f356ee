"""Using a snapshot's validation split while a reward model trains: the ``TrainingArguments`` that evaluate
on it (every N steps or each epoch), keep the best checkpoint (``load_best_model_at_end``) and feed early
stopping, the encoded validation pairs, and the record of which step's weights training ended with.

The test split stays untouched until the evaluation after training (``training.rewardmodels.evaluation``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.datasets.reader import preference_rows, read_snapshot_split
from training.rm_encoding import PairEncoder, tokenize_pairs

# ``cfg`` below is a ``training.rewardmodels.trainer.RewardRunConfig`` (not imported: the trainer imports this).


def evaluation_args(cfg: Any, *, has_validation: bool) -> dict[str, Any]:
    """``TrainingArguments`` for evaluation on the validation split during training, and for keeping the best
    checkpoint (written only when the metric improves: ``save_strategy="best"``, model weights only)."""
    if cfg.eval_strategy == "no" or not has_validation:
        return {}
    args: dict[str, Any] = {
        "eval_strategy": cfg.eval_strategy,
        "per_device_eval_batch_size": cfg.eval_batch_size,
        "metric_for_best_model": f"eval_{cfg.metric_for_best_model}",
        "greater_is_better": cfg.metric_for_best_model == "accuracy",
    }
    if cfg.eval_strategy == "steps":
        args["eval_steps"] = cfg.eval_steps or cfg.logging_steps
    if cfg.keep_best_checkpoint:
        args.update(
            save_strategy="best", load_best_model_at_end=True, save_only_model=True, save_total_limit=1
        )
    return args


def validation_dataset(artifact_dir: str | Path, encoder: PairEncoder, cfg: Any):
    """The snapshot's validation pairs, encoded as training encodes (None when there are none), and their
    encoding report."""
    from datasets import Dataset

    rows, meta = read_snapshot_split(artifact_dir, "validation")
    rows, _, neutral = preference_rows(rows, meta)
    cols, report = tokenize_pairs(rows, encoder, use_margin=cfg.use_margin)
    report["neutral_dropped"] = neutral
    cols.pop("kept_index")
    return (Dataset.from_dict(cols) if cols["chosen_ids"] else None), report


def checkpoint_selection(state, args) -> dict[str, Any]:
    """Which step's weights training ended with, from the trainer's state: the best evaluated step when
    ``load_best_model_at_end`` is on, else the last one; and whether early stopping cut the run short."""
    evaluations = [entry for entry in state.log_history if args.metric_for_best_model in entry]
    best_step = getattr(state, "best_global_step", None)
    kept_best = bool(args.load_best_model_at_end and best_step)
    return {
        "evaluations": len(evaluations),
        "metric": args.metric_for_best_model if evaluations else None,
        "best_value": state.best_metric if evaluations else None,
        "kept_step": int(best_step) if kept_best else int(state.global_step),
        "kept": "best" if kept_best else "last",
        "stopped_early": bool(state.max_steps and state.global_step < state.max_steps),
        "max_steps": int(state.max_steps),
    }
