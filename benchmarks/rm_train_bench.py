"""Reward-model training throughput: a PrefLab run (TrainingRun row, executor, progress/metrics callback
writing to the database, heartbeat thread) against TRL ``RewardTrainer`` driven directly in a script, on
the same hh-rlhf pairs, model, hyper-parameters and pre-tokenised data.

Both sides report train-loop throughput (pairs per second of ``trainer.train()``); PrefLab's overhead is
``1 - preflab / direct``. Runs alternate, and the side that goes first alternates too (direct, preflab,
preflab, direct, ...), to spread the noise of a shared machine and the first run's warm-up over both. The
reporting cost per step (progress + metric row written to the database by the run's callback, every step)
is also timed on its own, which is far less noisy than the difference of two throughputs.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/rm_train_bench.py --steps 16 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def direct_trl(snapshot_dir: Path, cfg, seed: int) -> dict:
    """What a user would write with TRL alone: tokenised pairs -> RewardTrainer -> train()."""
    from datasets import Dataset
    from trl import RewardTrainer

    from training.datasets.reader import read_snapshot_split
    from training.rewardmodels.trainer import build_reward_config, load_base, resolve_base_model
    from training.rm_encoding import PairEncoder, tokenize_pairs

    tokenizer, model = load_base(resolve_base_model("minilm"), cfg)
    rows, _ = read_snapshot_split(snapshot_dir, "train")
    cols, _ = tokenize_pairs(
        rows[: cfg.max_train_pairs], PairEncoder(tokenizer, cfg.max_length), use_margin=False
    )
    cols.pop("kept_index")
    with tempfile.TemporaryDirectory() as out:
        trainer = RewardTrainer(
            model=model,
            args=build_reward_config(cfg, output_dir=out, seed=seed),
            train_dataset=Dataset.from_dict(cols),
            processing_class=tokenizer,
        )
        t0 = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - t0
    pairs = result.global_step * cfg.per_device_train_batch_size
    return {"steps": result.global_step, "seconds": seconds, "pairs_per_second": pairs / seconds}


def preflab_run(snapshot, cfg, seed: int) -> dict:
    from training import jobs
    from training.models import JobStatus
    from training.rewardmodels.services import reward_run_create

    run = reward_run_create(
        snapshot=snapshot, base_model="minilm", config=cfg.to_dict(), seed=seed, enqueue=False
    )
    t0 = time.perf_counter()
    jobs.run_execute(run_id=run.pk)
    wall = time.perf_counter() - t0
    run.refresh_from_db()
    if run.status != JobStatus.SUCCEEDED:
        raise RuntimeError(f"run failed: {run.status_reason}")
    s = run.summary
    return {
        "steps": s["steps"],
        "seconds": s["train_seconds"],
        "pairs_per_second": s["pairs_per_second"],
        "job_wall_seconds": wall,
        "metric_rows": run.metrics.count(),
        "test_accuracy": s["eval"]["accuracy"],
    }


def reporting_cost(snapshot, cfg, steps: int) -> dict:
    """Seconds per step spent in PrefLab's progress/metrics callback, with every step writing (as it does
    when a step takes longer than the reporter's throttle interval)."""
    from types import SimpleNamespace

    from training.jobs import RunReporter
    from training.rewardmodels.services import reward_run_create
    from training.trl_runs import REWARD_METRICS, progress_callback

    run = reward_run_create(
        snapshot=snapshot, base_model="minilm", config=cfg.to_dict(), seed=0, enqueue=False
    )
    callback = progress_callback(RunReporter(run.pk, min_interval_s=0), REWARD_METRICS)
    state = SimpleNamespace(global_step=0, max_steps=steps)
    logs = {"loss": 0.69, "accuracy": 0.5, "margin": 0.01, "learning_rate": 5e-5, "grad_norm": 0.1}
    t0 = time.perf_counter()
    callback.on_train_begin(None, state, None)
    for step in range(1, steps + 1):
        state.global_step = step
        callback.on_step_end(None, state, None)
        callback.on_log(None, state, None, logs=logs)
    seconds = time.perf_counter() - t0
    run.delete()
    return {"steps": steps, "ms_per_step": 1000 * seconds / steps}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import django

    django.setup()
    import torch
    from django.conf import settings

    from annotation.models import Project
    from training.hh_rlhf_files import write_hh_rlhf_snapshot_files
    from training.models import DatasetSnapshot, JobStatus
    from training.rewardmodels.trainer import RewardRunConfig

    torch.set_num_threads(args.threads)
    cfg = RewardRunConfig(
        learning_rate=5e-5,
        per_device_train_batch_size=args.batch_size,
        max_length=args.max_length,
        max_steps=args.steps,
        max_train_pairs=args.steps * args.batch_size,
        logging_steps=1,  # PrefLab writes a metric row every step: the worst case for overhead
        use_margin=False,
        torch_threads=args.threads,
    )
    root = Path(settings.ARTIFACT_DIR) / "bench" / "hh-rlhf-files"
    _, content_hash, counts = write_hh_rlhf_snapshot_files(
        settings.SHARED_DATA_DIR / "hh-rlhf-harmless-dev.jsonl.gz", root
    )
    project, _ = Project.objects.get_or_create(name="rm-train-bench")
    snapshot = DatasetSnapshot.objects.filter(name="rm-train-bench", content_hash=content_hash).first()
    if snapshot is None:
        version = DatasetSnapshot.objects.filter(name="rm-train-bench").count() + 1
        snapshot = DatasetSnapshot.objects.create(
            name="rm-train-bench", version=version, status=JobStatus.SUCCEEDED, content_hash=content_hash,
            artifact_dir=str(root), counts=counts,
        )  # fmt: skip
        snapshot.projects.add(project)

    direct, preflab = [], []
    for i in range(args.repeats):
        for side in ("direct", "preflab") if i % 2 == 0 else ("preflab", "direct"):
            if side == "direct":
                direct.append(direct_trl(root, cfg, seed=i))
                print("direct ", json.dumps(direct[-1]), flush=True)
            else:
                preflab.append(preflab_run(snapshot, cfg, seed=i))
                print("preflab", json.dumps(preflab[-1]), flush=True)
    reporting = reporting_cost(snapshot, cfg, steps=args.steps)
    direct_step_ms = 1000 * statistics.median(r["seconds"] / r["steps"] for r in direct)
    d = statistics.median(r["pairs_per_second"] for r in direct)
    p = statistics.median(r["pairs_per_second"] for r in preflab)
    print(
        json.dumps(
            {
                "steps": args.steps,
                "batch_size": args.batch_size,
                "max_length": args.max_length,
                "direct_pairs_per_s_median": round(d, 3),
                "preflab_pairs_per_s_median": round(p, 3),
                "overhead_pct": round(100 * (1 - p / d), 2),
                "reporting_ms_per_step": round(reporting["ms_per_step"], 2),
                "direct_ms_per_step_median": round(direct_step_ms, 1),
                "reporting_share_of_step_pct": round(100 * reporting["ms_per_step"] / direct_step_ms, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
