"""Capability gate (layer 1 of the evaluation gate) on the ``make demo`` policy model, on this CPU.

Times what a gate run of the demo spends: each task set generated and scored for one model with the default
gate config (greedy, batched), and the whole gate for the models the demo's PPO run has (SFT and policy: the
demo starts PPO from SmolLM2-135M-Instruct, so there is no separate base). The baseline in the same process
is the same set answered one prompt at a time (batch size 1), which is what batching saves.

    .venv/bin/python benchmarks/capability_gate_bench.py [--policy DIR] [--max-items 12] [--threads 2]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=None, help="model dir (default: the demo's SmolLM2-135M)")
    parser.add_argument("--max-items", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", type=int, default=2, help="models a gate evaluates (demo: sft, policy)")
    args = parser.parse_args()

    import django

    django.setup()
    import torch

    from training.policy.capability.config import GateConfig
    from training.policy.capability.intervals import bootstrap_interval
    from training.policy.capability.runner import evaluate_model
    from training.policy.capability.tasksets import task_set
    from training.policy.gguf import policy_model_resolve

    torch.set_num_threads(args.threads)
    cfg = GateConfig()
    if args.max_items:
        cfg.max_items = args.max_items
    if args.max_new_tokens:
        cfg.max_new_tokens = args.max_new_tokens
    model_dir = policy_model_resolve(args.policy)
    print(f"model {model_dir}; {args.threads} threads; config {json.dumps(cfg.to_dict())}")

    # Warm-up: the first load pays file-cache and kernel set-up costs a worker pays once.
    evaluate_model(model_dir, [task_set("format")], max_items=2, max_new_tokens=4, batch_size=2)

    per_set: dict[str, dict] = {}
    total = 0.0
    for name in cfg.sets:
        t0 = time.perf_counter()
        (outcome,) = evaluate_model(
            model_dir,
            [task_set(name)],
            max_items=cfg.max_items,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=cfg.batch_size,
        )
        seconds = time.perf_counter() - t0
        interval = bootstrap_interval(outcome.scores, n_boot=cfg.bootstrap_samples, seed=cfg.seed)
        per_set[name] = {"seconds": round(seconds, 1), **interval.as_dict()}
        total += seconds
        print(
            f"{name:12s} {interval.n:3d} items  {seconds:6.1f} s  score {interval.score:.3f} "
            f"[{interval.low:.3f}, {interval.high:.3f}]"
        )

    t0 = time.perf_counter()
    evaluate_model(model_dir, [task_set(n) for n in cfg.sets], max_items=cfg.max_items,
                   max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)  # fmt: skip
    one_pass = time.perf_counter() - t0
    name = "format"
    t0 = time.perf_counter()
    evaluate_model(model_dir, [task_set(name)], max_items=cfg.max_items,
                   max_new_tokens=cfg.max_new_tokens, batch_size=1)  # fmt: skip
    unbatched = time.perf_counter() - t0
    print(f"all sets, one model, one generation pass (what a gate run does): {one_pass:.1f} s")
    print(f"gate for {args.models} models: {one_pass * args.models:.1f} s")
    print(
        f"batching: '{name}' at batch size 1 {unbatched:.1f} s vs {cfg.batch_size} "
        f"{per_set[name]['seconds']:.1f} s = {unbatched / max(per_set[name]['seconds'], 1e-9):.2f}x"
    )
    print(json.dumps({"per_set": per_set, "one_model_s": round(one_pass, 1),
                      "gate_s": round(one_pass * args.models, 1), "unbatched_format_s": round(unbatched, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()
