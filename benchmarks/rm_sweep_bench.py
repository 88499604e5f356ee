"""Reward-model sweep on the shared hh-rlhf pairs: the one-click default config against the configuration a
PrefLab sweep (Optuna, study in PostgreSQL, trials scored on validation) chooses, both trained on the same
train pairs and each evaluated once on the test split, with 95 % Wilson intervals and train cost.

The default is the sweep's trial 0 (``start_from_base``), so both have a validation score from the same
code; the default is then trained once more as an ordinary run for its test accuracy, as the sweep does for
its chosen config. Ratios (best / default) are printed from the same process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/preflab_sweeps PREFLAB_DATA_DIR=/tmp/preflab_sweep_bench \\
        .venv/bin/python benchmarks/rm_sweep_bench.py --trials 6 --train-pairs 256
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--train-pairs", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-lengths", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--lora-ranks", type=int, nargs="+", default=[0, 16])
    parser.add_argument("--max-epochs", type=int, default=2)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    from training.rewardmodels.trainer import RewardRunConfig

    defaults = RewardRunConfig()
    if defaults.max_length not in args.max_lengths or (0 not in args.lora_ranks and not defaults.use_lora):
        # trial 0 is the one-click defaults only when each of their values lies in the searched space
        parser.error(f"--max-lengths must include the default {defaults.max_length} and --lora-ranks 0")

    from annotation.models import Project
    from training import jobs
    from training.hh_rlhf_files import write_hh_rlhf_snapshot_files
    from training.models import DatasetSnapshot, JobStatus, ModelEvaluation
    from training.rewardmodels.services import reward_run_create
    from training.rewardmodels.sweeps.services import sweep_create, sweep_work, wilson_interval

    root = Path(settings.ARTIFACT_DIR) / "bench" / "hh-rlhf-sweep"
    _, content_hash, counts = write_hh_rlhf_snapshot_files(
        settings.SHARED_DATA_DIR / "hh-rlhf-harmless-dev.jsonl.gz", root
    )
    project, _ = Project.objects.get_or_create(name="rm-sweep-bench")
    snapshot = DatasetSnapshot.objects.filter(name="rm-sweep-bench", content_hash=content_hash).first()
    if snapshot is None:
        version = DatasetSnapshot.objects.filter(name="rm-sweep-bench").count() + 1
        snapshot = DatasetSnapshot.objects.create(
            name="rm-sweep-bench", version=version, status=JobStatus.SUCCEEDED, content_hash=content_hash,
            artifact_dir=str(root), counts=counts,
        )  # fmt: skip
        snapshot.projects.add(project)
    print("counts", json.dumps(counts), flush=True)

    # The one-click defaults (RewardRunConfig()), on a train subset so that a sweep fits a 2-core CPU.
    base = {"max_train_pairs": args.train_pairs, "torch_threads": args.threads, "eval_batch_size": 32}
    config = {
        "n_trials": args.trials,
        "objective": "accuracy",
        "n_startup_trials": 3,
        "space": {
            "learning_rate": {"low": 1e-5, "high": 5e-4, "log": True},
            "num_train_epochs": {"low": 1, "high": args.max_epochs},
            "max_length": {"choices": args.max_lengths},
            "truncate_prompt_left": {"choices": [True, False]},
            "lora_r": {"choices": args.lora_ranks},
            "weight_decay": {"low": 0.0, "high": 0.1},
        },
        "base": base,
    }
    t0 = time.perf_counter()
    sweep = sweep_create(snapshot=snapshot, base_model="minilm", config=config, seed=args.seed, enqueue=False)
    sweep = sweep_work(sweep_id=sweep.pk)
    sweep_wall = time.perf_counter() - t0
    trials = list(sweep.trials.select_related("run").order_by("number"))
    for t in trials:
        print(
            "trial",
            json.dumps(
                {
                    "number": t.number,
                    "params": t.params,
                    "state": t.state,
                    "validation": t.validation,
                    "train_seconds": (t.run.summary or {}).get("train_seconds"),
                }
            ),
            flush=True,
        )
    if sweep.status != JobStatus.SUCCEEDED:
        print("sweep", sweep.status, sweep.status_reason)
        return 1
    default_trial = trials[0]
    best = next(t for t in trials if t.number == sweep.best_trial_number)

    # The default config once more, as an ordinary run: its test accuracy (the sweep read test only for best).
    # When the sweep chose the default itself, its final run is that run.
    if best.number == default_trial.number and sweep.final_run_id:
        default_run = sweep.final_run
    else:
        default_run = reward_run_create(
            snapshot=snapshot,
            base_model="minilm",
            config=default_trial.run.config,
            seed=args.seed,
            enqueue=False,
        )
        jobs.run_execute(run_id=default_run.pk)
        default_run.refresh_from_db()
    default_eval = ModelEvaluation.objects.get(reward_model__run=default_run).metrics
    d_acc, d_n = default_eval["accuracy"], default_eval["n"]
    best_test = sweep.test_result

    def row(name, trial, accuracy, n, interval, train_seconds):
        return {
            "config": name,
            "trial": trial.number,
            "params": trial.params,
            "validation_accuracy": trial.validation.get("accuracy"),
            "validation_loss": trial.validation.get("loss"),
            "validation_n": trial.validation.get("n"),
            "test_accuracy": accuracy,
            "test_n": n,
            "test_ci95": interval,
            "train_seconds": train_seconds,
        }

    out = {
        "sweep_id": sweep.pk,
        "trials": len(trials),
        "sweep_wall_seconds": round(sweep_wall, 1),
        "trial_train_seconds_total": round(
            sum((t.run.summary or {}).get("train_seconds", 0) for t in trials), 1
        ),
        "default": row(
            "default",
            default_trial,
            d_acc,
            d_n,
            wilson_interval(d_acc * d_n, d_n),
            default_run.summary.get("train_seconds"),
        ),
        "best": row(
            "best",
            best,
            best_test["accuracy"],
            best_test["n"],
            best_test["accuracy_ci95"],
            best_test.get("train_seconds"),
        ),
    }
    out["ratios"] = {
        "validation_accuracy_best_over_default": round(
            best.validation["accuracy"] / default_trial.validation["accuracy"], 3
        ),
        "test_accuracy_best_over_default": round(best_test["accuracy"] / d_acc, 3),
        "train_seconds_best_over_default": round(
            (best_test.get("train_seconds") or 0) / (default_run.summary.get("train_seconds") or 1), 3
        ),
    }
    print("RESULT", json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
