"""The executor of a sweep trial: an ordinary reward run (same trainer, same curves on the run row) whose
model is scored on the snapshot's validation split only, for the sweep's objective. It reads no test row,
registers nothing and keeps no weights (the chosen config is trained again by the sweep's final run).

Heavy libraries are imported by the trainer inside its functions, so importing this module is cheap.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from training.datasets.reader import read_snapshot_split
from training.evaluation import evaluate_pairs
from training.jobs import RunReporter
from training.rm_encoding import score_split

#: The split trials are scored on (the objective's only data).
OBJECTIVE_SPLIT = "validation"
#: Validation metrics kept on the trial and the run summary.
VALIDATION_KEYS = ("accuracy", "loss", "mean_margin", "ece", "n")


def pair_log_loss(r_chosen, r_rejected) -> float | None:
    """Mean Bradley-Terry negative log-likelihood, -log sigmoid(r_chosen - r_rejected); None if no pair."""
    diff = np.asarray(r_chosen, dtype=float) - np.asarray(r_rejected, dtype=float)
    if diff.size == 0:
        return None
    return float(np.mean(np.logaddexp(0.0, -diff)))


def validation_metrics(model, tokenizer, snapshot_dir: str | Path, *, max_length: int, batch_size: int):
    """Accuracy, log loss, margin, ECE and n of ``model`` on the snapshot's validation split."""
    rows, meta = read_snapshot_split(snapshot_dir, OBJECTIVE_SPLIT)
    if not rows:
        raise ValueError("the snapshot's validation split is empty: a sweep has nothing to score trials on")
    r_c, r_r, kept_rows, kept_meta, report = score_split(
        model, tokenizer, rows, meta, max_length=max_length, batch_size=batch_size
    )
    metrics = evaluate_pairs(r_c, r_r, kept_rows, kept_meta)
    metrics["loss"] = pair_log_loss(r_c, r_r)
    return {k: metrics.get(k) for k in VALIDATION_KEYS}, report


def execute_sweep_trial(run, reporter: RunReporter) -> dict[str, Any]:
    """Snapshot -> RewardTrainer (the reward executor's trainer) -> validation metrics on the run."""
    from django.conf import settings

    from training.models import JobStatus
    from training.rewardmodels.trainer import RewardRunConfig, train_reward_model

    snapshot = run.snapshot
    if snapshot is None or snapshot.status != JobStatus.SUCCEEDED or not snapshot.artifact_dir:
        raise ValueError("the run's dataset snapshot is missing or not ready")
    cfg = RewardRunConfig.from_dict(run.config)
    scratch = Path(settings.ARTIFACT_DIR) / "sweeps"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=f"trial-run-{run.pk}-") as tmp:
        trained = train_reward_model(
            base_model=run.base_model,
            artifact_dir=snapshot.artifact_dir,
            cfg=cfg,
            seed=run.seed,
            output_dir=tmp,
            reporter=reporter,
        )
    reporter.heartbeat()
    reporter.log(
        f"trained {trained.steps} steps in {trained.train_seconds:.1f}s; scoring the validation split"
    )
    metrics, report = validation_metrics(
        trained.model,
        trained.tokenizer,
        snapshot.artifact_dir,
        max_length=cfg.max_length,
        batch_size=cfg.eval_batch_size,
    )
    reporter.log_metrics(
        trained.steps, {f"val_{k}": v for k, v in metrics.items() if k != "n" and v is not None}
    )
    reporter.log(f"validation: accuracy {metrics['accuracy']}, loss {metrics['loss']} (n={metrics['n']})")
    summary = trained.summary()
    del summary["world_size"]
    summary["data"] = {**summary["data"], OBJECTIVE_SPLIT: report}
    return {**summary, "validation": metrics, "objective_split": OBJECTIVE_SPLIT}
