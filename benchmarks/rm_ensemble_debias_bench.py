"""Ensemble and length-debiased reward models against the default one, on the shared hh-rlhf harmless pairs.

Each variant is trained and evaluated by the code a PrefLab run uses (``training.rewardmodels.launch.run_spec``:
train -> evaluate on the test split -> card, no database) with the same data, base model (the packaged
all-MiniLM-L6-v2) and hyper-parameters; only the variant's option differs. Reported per variant: test accuracy
with a 95 % bootstrap interval, the report's reward/length correlation and margin/length-difference
correlation, accuracy by length difference, and train cost (seconds of training, all members). Then, on the
same test pairs, each variant minus the default with a paired bootstrap interval, and for the ensemble the
run's own "ensemble vs best member" report.

    .venv/bin/python benchmarks/rm_ensemble_debias_bench.py --train-pairs 256 --max-length 96 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def test_outcomes(model_dir: Path, snapshot_dir: Path, max_length: int):
    """Per-pair outcomes (1 / 0 / 0.5) of a saved model (single or ensemble) on the test split."""
    from transformers import AutoTokenizer

    from training.datasets.reader import read_snapshot_split
    from training.evaluation import pair_outcomes
    from training.rm_encoding import score_split
    from training.rm_ensemble import load_reward_model

    rows, meta = read_snapshot_split(snapshot_dir, "test")
    model = load_reward_model(model_dir).eval()
    r_c, r_r, *_ = score_split(
        model, AutoTokenizer.from_pretrained(model_dir), rows, meta, max_length=max_length, batch_size=32
    )
    return pair_outcomes(r_c, r_r)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="default,debiased,ensemble")
    parser.add_argument(
        "--records", type=int, default=0, help="read only the first N hh-rlhf records (0: all)"
    )
    parser.add_argument("--train-pairs", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ensemble-size", type=int, default=3)
    parser.add_argument("--length-penalty", type=float, default=1.0)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument(
        "--extra", default="{}", help="JSON config fields every variant gets (e.g. a sweep's)"
    )
    parser.add_argument("--stats-pairs", type=int, default=100, help="train pairs for the card's mean/std")
    parser.add_argument("--out", default="", help="keep the models here (default: a temp dir)")
    args = parser.parse_args()

    import django

    django.setup()
    import torch
    from django.conf import settings

    from training.evaluation import bootstrap_accuracy, paired_bootstrap_difference
    from training.hh_rlhf_files import write_hh_rlhf_snapshot_files
    from training.rewardmodels import evaluation
    from training.rewardmodels.launch import run_spec

    torch.set_num_threads(args.threads)
    # The card's normalisation statistics enter no figure here: measure them on fewer train pairs.
    evaluation.train_reward_stats.__kwdefaults__["max_pairs"] = args.stats_pairs
    work = Path(args.out or tempfile.mkdtemp(prefix="rm-ens-bench-"))
    snapshot_dir, content_hash, counts = write_hh_rlhf_snapshot_files(
        settings.SHARED_DATA_DIR / "hh-rlhf-harmless-dev.jsonl.gz",
        work / "snapshot",
        limit=args.records or None,
    )
    base = {
        "learning_rate": args.learning_rate,
        "per_device_train_batch_size": args.batch_size,
        "max_length": args.max_length,
        "max_train_pairs": args.train_pairs,
        "logging_steps": 2,
        "eval_batch_size": 32,
        "torch_threads": args.threads,
        **json.loads(args.extra),
    }
    options = {
        "default": {},
        "ensemble": {"ensemble_size": args.ensemble_size},
        "debiased": {"length_penalty": args.length_penalty},
        "offset": {"length_offset": True},
    }
    print(json.dumps({"counts": counts, "config": base}), flush=True)
    results, outcomes = {}, {}
    for name in args.variants.split(","):
        spec = {
            "base_model": "minilm",
            "snapshot_dir": str(snapshot_dir),
            "snapshot_hash": content_hash,
            "config": {**base, **options[name]},
            "seed": 0,
            "output_dir": str(work / name),
        }
        started = time.perf_counter()
        run = run_spec(spec)
        wall = time.perf_counter() - started
        ev = run["eval"]
        if name == "ensemble":  # its report scores every member and their mean on the test pairs
            accuracy = ev["ensemble"]["ensemble"]
        else:
            outcomes[name] = test_outcomes(work / name, snapshot_dir, args.max_length)
            accuracy = bootstrap_accuracy(outcomes[name], seed=0)
        results[name] = {
            "accuracy": accuracy,
            "length_correlation": ev["length_correlation"],
            "margin_length_correlation": ev["margin_length_correlation"],
            "accuracy_by_length_diff": [
                (b["lo"], b["hi"], b["count"], b["accuracy"]) for b in ev["accuracy_by_length_diff"]
            ],
            "ece": ev["ece"],
            "train_seconds": round(run["train_seconds"], 1),
            "steps": run["steps"],
            "wall_seconds": round(wall, 1),
            "ensemble": ev.get("ensemble"),
            "length_offset_weight": (run.get("data") or {}).get("train", {}).get("length_offset_weight"),
            "member_train_seconds": run.get("ensemble", {}).get("member_train_seconds"),
        }
        print(name, json.dumps(results[name]), flush=True)
    for name in outcomes:
        if name != "default" and "default" in outcomes:
            diff = paired_bootstrap_difference(outcomes[name], outcomes["default"], seed=0)
            results[name]["vs_default"] = diff
            print(f"{name} - default", json.dumps(diff), flush=True)
    (work / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print("results in", work / "results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
