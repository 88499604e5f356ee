"""Leaderboard benchmark: Bradley-Terry fit of N synthetic comparisons over M models, plus the bootstrap.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/leaderboard_bench.py --comparisons 1000000 --models 100

Generates comparisons from known strengths (random pairs, 10% ties), then times, separately: aggregation of
the rows into pair counts (``np.bincount``), the Newton fit, and ``--boot`` bootstrap refits (batched Newton).
Then fits an independent logistic regression on the same data (scipy L-BFGS over a design matrix with one
weighted row per (pair, outcome), model 0 fixed at 0) and reports the largest strength difference. Prints one
JSON object. Pure numpy/scipy; no database.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from annotation.quality.leaderboard import aggregate, bootstrap_bradley_terry, fit_bradley_terry  # noqa: E402


def synthetic(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = rng.normal(0.0, 1.0, m)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    y = (rng.random(n) < expit(true[a] - true[b])).astype(float)
    y[rng.random(n) < 0.1] = 0.5
    return true - true.mean(), a, b, y


def reference_fit(counts, m: int) -> np.ndarray:
    """Independent logistic regression: one weighted row per (pair, outcome) cell, theta_0 fixed at 0."""
    rows_i = np.concatenate([counts.i, counts.i])
    rows_j = np.concatenate([counts.j, counts.j])
    target = np.concatenate([np.ones(len(counts.i)), np.zeros(len(counts.i))])
    weight = np.concatenate([counts.wins_i, counts.games - counts.wins_i])
    x = np.zeros((len(rows_i), m))
    x[np.arange(len(rows_i)), rows_i] = 1.0
    x[np.arange(len(rows_j)), rows_j] = -1.0
    x = x[:, 1:]

    def fg(beta):
        z = x @ beta
        f = -(weight * np.where(target == 1, log_expit(z), log_expit(-z))).sum()
        g = -(x.T @ (weight * (target - expit(z))))
        return f, g

    res = minimize(fg, np.zeros(m - 1), jac=True, method="L-BFGS-B", options={"gtol": 1e-9, "maxiter": 10000})
    theta = np.concatenate([[0.0], res.x])
    return theta - theta.mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparisons", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    true, a, b, y = synthetic(args.comparisons, args.models, args.seed)
    t0 = time.perf_counter()
    counts = aggregate(a, b, y, args.models)
    t1 = time.perf_counter()
    theta = fit_bradley_terry(counts)
    t2 = time.perf_counter()
    boot = (
        bootstrap_bradley_terry(counts, theta, n_boot=args.boot) if args.boot else np.zeros((0, args.models))
    )
    t3 = time.perf_counter()
    reference = reference_fit(counts, args.models)
    t4 = time.perf_counter()
    print(
        json.dumps(
            {
                "comparisons": args.comparisons,
                "models": args.models,
                "pairs": int(len(counts.games)),
                "aggregate_s": round(t1 - t0, 3),
                "fit_s": round(t2 - t1, 3),
                "aggregate_plus_fit_s": round(t2 - t0, 3),
                "bootstrap_replicates": args.boot,
                "bootstrap_s": round(t3 - t2, 3),
                "reference_lbfgs_s": round(t4 - t3, 3),
                "max_abs_diff_vs_reference": float(np.max(np.abs(theta - reference))),
                # Ties are drawn independently of strength here, so they shrink strengths towards 0: compare
                # the ordering and shape with the truth by correlation, not by absolute error.
                "correlation_with_truth": float(np.corrcoef(theta, true)[0, 1]),
                "median_ci_width_elo": float(
                    np.median(np.ptp(np.percentile(boot, [2.5, 97.5], axis=0), axis=0)) * 400 / np.log(10)
                )
                if args.boot
                else None,
            }
        )
    )


if __name__ == "__main__":
    main()
