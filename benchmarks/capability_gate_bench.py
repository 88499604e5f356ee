"""Capability gate (layer 1 of the evaluation gate) on the ``make demo`` policy model, on this CPU.

Times what a gate run spends per model with the default gate config: every configured task set answered
in one greedy, batched generation pass and scored (what ``execute_gate_run`` does for each model), and
the gate for the models the demo's PPO run has (SFT and policy: the demo starts PPO from
SmolLM2-135M-Instruct, so there is no separate base). Wall time and the process's CPU time are both
printed: on a shared machine the CPU time divided by the threads is the better estimate of an idle run.
The baseline in the same process is a few prompts answered one at a time (batch size 1) against the same
prompts in one batch, which is what batching saves.

    .venv/bin/python -u benchmarks/capability_gate_bench.py [--policy DIR] [--max-items 12] [--threads 2]
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


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=None, help="model dir (default: the demo's SmolLM2-135M)")
    parser.add_argument("--max-items", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", type=int, default=2, help="models a gate evaluates (demo: sft, policy)")
    parser.add_argument("--baseline-items", type=int, default=4)
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
    cfg.max_items = args.max_items or cfg.max_items
    cfg.max_new_tokens = args.max_new_tokens or cfg.max_new_tokens
    model_dir = policy_model_resolve(args.policy)
    print(f"model {model_dir}; {args.threads} threads; config {json.dumps(cfg.to_dict())}")
    sets = [task_set(name) for name in cfg.sets]

    # Warm-up: the first load pays file-cache and kernel set-up costs a worker pays once.
    evaluate_model(model_dir, sets[:1], max_items=2, max_new_tokens=4, batch_size=2)

    outcomes, wall, cpu = timed(
        lambda: evaluate_model(
            model_dir,
            sets,
            max_items=cfg.max_items,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=cfg.batch_size,
        )
    )
    items = sum(len(o.scores) for o in outcomes)
    for outcome in outcomes:
        iv = bootstrap_interval(outcome.scores, n_boot=cfg.bootstrap_samples, seed=cfg.seed)
        print(f"{outcome.task_set:12s} {iv.n:3d} items  score {iv.score:.3f} [{iv.low:.3f}, {iv.high:.3f}]")
    print(
        f"one model, {items} items in one pass: wall {wall:.1f} s, CPU {cpu:.1f} s "
        f"(CPU/threads {cpu / args.threads:.1f} s)"
    )
    print(
        f"gate for {args.models} models: wall {wall * args.models:.1f} s, "
        f"CPU/threads {cpu / args.threads * args.models:.1f} s"
    )

    k = args.baseline_items
    one_set = [task_set("format")]
    _, w1, c1 = timed(
        lambda: evaluate_model(
            model_dir, one_set, max_items=k, max_new_tokens=cfg.max_new_tokens, batch_size=1
        )
    )
    _, wk, ck = timed(
        lambda: evaluate_model(
            model_dir, one_set, max_items=k, max_new_tokens=cfg.max_new_tokens, batch_size=k
        )
    )
    print(
        f"batching, {k} format prompts: batch 1 wall {w1:.1f} s CPU {c1:.1f} s; batch {k} wall {wk:.1f} s "
        f"CPU {ck:.1f} s; CPU ratio {c1 / max(ck, 1e-9):.2f}x"
    )


if __name__ == "__main__":
    main()
