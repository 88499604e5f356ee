"""What every TRL trainer PrefLab starts has in common (reward model, SFT, GRPO/RLOO): the local-run
arguments, the callback that streams progress and metrics to the run row, and the way a finished model
directory appears (built in a temp dir, renamed into place when complete).

torch and transformers are imported inside functions, so importing this module is cheap.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Reward-model trainer logs kept as run metrics (same names as TRL's; evaluation on the validation split
#: during training logs the same numbers with an ``eval_`` prefix).
REWARD_METRICS = {
    k: k
    for k in ("loss", "accuracy", "margin", "learning_rate", "grad_norm", "mean_reward", "length_correlation")
    + ("eval_loss", "eval_accuracy", "eval_margin", "eval_mean_reward")
}

#: Parameters from which ``activation_checkpointing="auto"`` turns checkpointing on (on a GPU only).
LARGE_MODEL_PARAMETERS = 1_000_000_000


def activation_checkpointing_for(setting: bool | None, *, parameters: int, gpu: bool) -> bool:
    """Recompute activations in the backward pass to save memory? ``None`` (auto): only for a large model
    (>= ``LARGE_MODEL_PARAMETERS``) on a GPU, where memory is what limits the batch; on CPU or for a small
    model it only costs time (one more forward per step). ``True`` / ``False`` force it."""
    if setting is not None:
        return setting
    return gpu and parameters >= LARGE_MODEL_PARAMETERS


def local_run_args(*, seed: int, tracking=None, activation_checkpointing: bool = False) -> dict[str, Any]:
    """``TrainingArguments`` shared by our TRL configs: seeded; no checkpoints or hub; no tqdm (progress goes
    to the run row); no dataloader workers; bf16 mixed precision where the GPU supports it, else fp32 (on CPU
    bf16 autocast is slower than fp32 and changes the numbers); activation checkpointing off unless asked
    (``activation_checkpointing_for``: TRL's configs turn it on by default, which for our small models only
    costs time). External trackers only when ``tracking`` (``training.tracking.Tracking``) names some."""
    import torch

    gpu = torch.cuda.is_available()
    return {
        "save_strategy": "no",
        "eval_strategy": "no",
        "seed": seed,
        "data_seed": seed,
        "bf16": gpu and torch.cuda.is_bf16_supported(),
        "activation_checkpointing": activation_checkpointing,
        "use_cpu": not gpu,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        **(tracking.trainer_args() if tracking is not None else {"report_to": "none"}),
    }


def progress_callback(
    reporter,
    names: dict[str, str],
    on_metrics: Callable[[int, dict[str, float]], None] | None = None,
):
    """A ``TrainerCallback`` that reports progress (``reporter.progress`` raises on cancel) and the trainer's
    logs named in ``names`` (TRL key -> PrefLab metric name).

    Metrics go to ``on_metrics(step, values)`` when given (the policy executors' bookkeeping, which logs them
    and runs the detectors), else straight to ``reporter.log_metrics``."""
    from transformers import TrainerCallback

    class RunProgressCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            reporter.progress(0, state.max_steps)

        def on_step_end(self, args, state, control, **kwargs):
            reporter.progress(state.global_step, state.max_steps)

        def on_train_end(self, args, state, control, **kwargs):
            # Early stopping ends before max_steps: the last step is then the total (and always written).
            reporter.progress(state.global_step, state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            values = {
                ours: float(logs[theirs])
                for theirs, ours in names.items()
                if isinstance((logs or {}).get(theirs), int | float)
            }
            if not values:
                return
            if on_metrics is not None:
                on_metrics(state.global_step, values)
            else:
                reporter.log_metrics(state.global_step, values)

    return RunProgressCallback()


@contextmanager
def artifact_dir_build(root: Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a new temp dir beside ``root``; when the block completes it is renamed to ``root``, so a reader
    never sees a half-written model. On error (or a cancel) the temp dir is removed and ``root`` untouched.

    ``replace``: remove an existing ``root`` first (a policy run executed again); without it an existing
    ``root`` makes the rename fail, so a registered reward model is never overwritten."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if replace and root.exists():
            shutil.rmtree(root)
        tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
