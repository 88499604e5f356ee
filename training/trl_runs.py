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

#: Reward-model trainer logs kept as run metrics (same names as TRL's).
REWARD_METRICS = {k: k for k in ("loss", "accuracy", "margin", "learning_rate", "grad_norm", "mean_reward")}


def local_run_args(*, seed: int) -> dict[str, Any]:
    """``TrainingArguments`` shared by our TRL configs: seeded; no checkpoints, hub or external loggers; no
    tqdm (progress goes to the run row); no dataloader workers; bf16 mixed precision where the GPU supports
    it, else fp32 (on CPU bf16 autocast is slower than fp32 and changes the numbers); no activation
    checkpointing (our models are small: it would only cost time)."""
    import torch

    gpu = torch.cuda.is_available()
    return {
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "seed": seed,
        "data_seed": seed,
        "bf16": gpu and torch.cuda.is_bf16_supported(),
        "activation_checkpointing": False,
        "use_cpu": not gpu,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
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
