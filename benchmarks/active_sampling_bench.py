"""Simulated leaderboard: votes needed by active pairing (annotation.quality.active_pairing) against uniform
random pairs, same models, same seeds, same run.

Known strengths: Elo ratings drawn N(1000, ``--elo-sd``) per model. A vote between i and j is won by i with
probability sigmoid(theta_i - theta_j) (no ties). Every ``--batch`` votes the leaderboard's Bradley-Terry fit
(``fit_bradley_terry``, warm-started) is refreshed; active pairing then plans the next batch from that fit.

Measured at every refit:
- median 95% interval width in Elo points, from the Wald covariance of the centred fit (1.96 sd either side;
  the leaderboard page uses a bootstrap, which agrees with Wald at these counts to within a few per cent and
  costs 1,000 refits, too much to repeat at every checkpoint),
- top-5 errors: how many of the first 5 places of the fitted order differ from the true order.
"Votes needed" is the first checkpoint at which the median width is under 50 Elo, and the first checkpoint
from which the fitted top 5 stays exactly right until the end of the run.

    .venv/bin/python benchmarks/active_sampling_bench.py --models 20 100 --seeds 0 1 2 \\
        --plot benchmarks/active_sampling.png
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from annotation.quality.active_pairing import adjacent_rank_weights, choose_pairs, covariance
from annotation.quality.leaderboard import ELO_SCALE, aggregate, fit_bradley_terry

TARGET_WIDTH = 50.0
TOP = 5
# "active": every interval (trace of the covariance); "active-top5": the differences between neighbours in the
# fitted top 5 and the boundary below it (annotation.quality.active_pairing.adjacent_rank_weights).
STRATEGIES = ("uniform", "active", "active-top5")
# Weak prior of the fit (sd 10 logits): keeps early strengths finite when a model has not lost yet.
FIT_L2 = 0.01


def simulate(m: int, seed: int, strategy: str, *, max_votes: int, batch: int, elo_sd: float, explore: float):
    rng_truth = np.random.default_rng(1000 + seed)  # same true strengths for both strategies
    true = rng_truth.normal(0.0, elo_sd / ELO_SCALE, size=m)
    true_top = list(np.argsort(-true)[:TOP])
    rng = np.random.default_rng(seed)
    a_all = np.empty(max_votes, dtype=np.int64)
    b_all = np.empty(max_votes, dtype=np.int64)
    y_all = np.empty(max_votes)
    theta = np.zeros(m)
    games = np.zeros((m, m))
    votes, widths, top_err = [], [], []
    n = 0
    center = np.eye(m) - 1.0 / m
    while n < max_votes:
        k = min(batch, max_votes - n)
        if strategy == "uniform":
            a = rng.integers(m, size=k)
            b = (a + rng.integers(1, m, size=k)) % m
        else:
            weights = adjacent_rank_weights(theta, top=TOP) if strategy == "active-top5" else None
            pairs = np.array(choose_pairs(theta, games, k, rng=rng, exploration=explore, weights=weights))
            a, b = pairs[:, 0], pairs[:, 1]
        y = (rng.random(k) < 1.0 / (1.0 + np.exp(-(true[a] - true[b])))).astype(float)
        a_all[n : n + k], b_all[n : n + k], y_all[n : n + k] = a, b, y
        np.add.at(games, (a, b), 1)
        np.add.at(games, (b, a), 1)
        n += k
        counts = aggregate(a_all[:n], b_all[:n], y_all[:n], m)
        theta = fit_bradley_terry(counts, l2=FIT_L2, tol=1e-8)
        cov = center @ covariance(theta, games, prior=FIT_L2) @ center
        width = 2 * 1.96 * ELO_SCALE * np.sqrt(np.clip(np.diag(cov), 0, None))
        votes.append(n)
        widths.append(float(np.median(width)))
        fitted_top = list(np.argsort(-theta)[:TOP])
        top_err.append(sum(int(x != y) for x, y in zip(fitted_top, true_top, strict=True)))
    return np.array(votes), np.array(widths), np.array(top_err)


def _median_width(theta: np.ndarray, alloc: np.ndarray, votes: float) -> float:
    """Median Wald 95% width (Elo) of the centred strengths when ``votes`` are spread over the pairs by
    ``alloc`` (sums to 1), at the true strengths."""
    p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))
    w = alloc * votes * p * (1.0 - p)
    np.fill_diagonal(w, 0.0)
    cov = np.linalg.pinv(np.diag(w.sum(axis=1)) - w)
    return float(np.median(2 * 1.96 * ELO_SCALE * np.sqrt(np.clip(np.diag(cov), 0, None))))


def _votes_for_target(theta: np.ndarray, alloc: np.ndarray) -> float:
    alloc = alloc / alloc.sum()
    lo, hi = 10.0, 1e8
    while hi / lo > 1.002:  # bisection on a log scale: the width falls monotonically with the votes
        mid = (lo * hi) ** 0.5
        lo, hi = (lo, mid) if _median_width(theta, alloc, mid) < TARGET_WIDTH else (mid, hi)
    return hi


def design_bounds(m: int, seed: int, elo_sd: float) -> tuple[float, float]:
    """How far any pairing can beat uniform on the interval target, for this seed's true strengths:

    - Fisher bound: one vote adds at most 0.25 (an even match) to the information of each of its two models;
      uniform pairing adds E[p(1-p)] over random partners on average. For the same information per model no
      pairing can use fewer than mean(p(1-p)) / 0.25 of uniform's votes.
    - Oracle: the votes an allocation proportional to (p(1-p))^k (k = 1, 2, 4, 8, 16: ever more even
      matches) needs, knowing the true strengths in advance and without sampling noise, relative to uniform's
      allocation in the same exact (Fisher) computation; the best k is reported.
    """
    true = np.random.default_rng(1000 + seed).normal(0.0, elo_sd / ELO_SCALE, size=m)
    p = 1.0 / (1.0 + np.exp(-(true[:, None] - true[None, :])))
    info = p * (1.0 - p)
    np.fill_diagonal(info, 0.0)
    fisher = float(info.sum() / (m * (m - 1)) / 0.25)
    uniform = np.ones((m, m)) - np.eye(m)
    base = _votes_for_target(true, uniform)
    oracle = min(_votes_for_target(true, info**k) for k in (1, 2, 4, 8, 16)) / base
    return fisher, oracle


def votes_needed(votes, widths, top_err) -> tuple[float, float]:
    below = np.flatnonzero(widths < TARGET_WIDTH)
    width_n = float(votes[below[0]]) if len(below) else np.nan
    wrong = np.flatnonzero(top_err > 0)
    if len(wrong) == 0:
        top_n = float(votes[0])
    elif wrong[-1] == len(votes) - 1:
        top_n = np.nan  # not right at the end of the run
    else:
        top_n = float(votes[wrong[-1] + 1])
    return width_n, top_n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--votes-per-model", type=int, default=1500, help="run length: this many x models")
    parser.add_argument("--batch-per-model", type=int, default=5, help="refit every this many x models votes")
    parser.add_argument("--elo-sd", type=float, default=150.0)
    parser.add_argument("--explore", type=float, default=0.1)
    parser.add_argument("--plot", default="")
    args = parser.parse_args()
    curves: dict = {}
    print("| models | seed | strategy | votes to median 95% CI < 50 Elo | votes to right top 5 | seconds |")
    print("|---|---|---|---|---|---|")
    ratios: dict = {}
    bounds: dict = {}
    for m in args.models:
        for seed in args.seeds:
            need = {}
            for strategy in STRATEGIES:
                t0 = time.perf_counter()
                res = simulate(
                    m,
                    seed,
                    strategy,
                    max_votes=args.votes_per_model * m,
                    batch=args.batch_per_model * m,
                    elo_sd=args.elo_sd,
                    explore=args.explore,
                )
                curves[(m, seed, strategy)] = res
                need[strategy] = votes_needed(*res)
                print(
                    f"| {m} | {seed} | {strategy} | {need[strategy][0]:,.0f} | {need[strategy][1]:,.0f} "
                    f"| {time.perf_counter() - t0:.1f} |",
                    flush=True,
                )
            for strategy in STRATEGIES[1:]:
                ratios.setdefault((m, strategy), []).append(
                    (need[strategy][0] / need["uniform"][0], need[strategy][1] / need["uniform"][1])
                )
            bounds.setdefault(m, []).append(design_bounds(m, seed, args.elo_sd))
    print()
    print(
        "| models | strategy | votes / uniform's, CI < 50 Elo (per seed) | votes / uniform's, top 5 (per seed) |"
    )
    print("|---|---|---|---|")
    for (m, strategy), rs in ratios.items():
        w = ", ".join(f"{r[0]:.2f}" for r in rs)
        t = ", ".join(f"{r[1]:.2f}" for r in rs)
        print(
            f"| {m} | {strategy} | {w} (median {np.nanmedian([r[0] for r in rs]):.2f}) | {t} "
            f"(median {np.nanmedian([r[1] for r in rs]):.2f}) |"
        )
    print()
    print("| models | Elo sd | Fisher bound (per seed) | oracle (p(1-p))^k design (per seed) |")
    print("|---|---|---|---|")
    for m, bs in bounds.items():
        print(
            f"| {m} | {args.elo_sd:.0f} | {', '.join(f'{b[0]:.2f}' for b in bs)} "
            f"| {', '.join(f'{b[1]:.2f}' for b in bs)} |"
        )
    if args.plot:
        plot(curves, args.models, args.seeds, args.plot)


def plot(curves, models, seeds, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(models), figsize=(5.5 * len(models), 8), squeeze=False)
    colours = {"uniform": "tab:gray", "active": "tab:blue", "active-top5": "tab:orange"}
    for col, m in enumerate(models):
        for strategy in STRATEGIES:
            for s_i, seed in enumerate(seeds):
                votes, widths, top_err = curves[(m, seed, strategy)]
                label = strategy if s_i == 0 else None
                axes[0, col].plot(votes, widths, color=colours[strategy], alpha=0.8, label=label)
                axes[1, col].plot(votes, top_err, color=colours[strategy], alpha=0.6, label=label)
        axes[0, col].axhline(TARGET_WIDTH, color="tab:red", linestyle="--", linewidth=1)
        axes[0, col].set_yscale("log")
        axes[0, col].set_title(f"{m} models: median 95% interval width")
        axes[0, col].set_ylabel("Elo points")
        axes[1, col].set_title(f"{m} models: top-5 places wrong")
        axes[1, col].set_xlabel("votes")
        axes[1, col].set_ylabel("places (of 5)")
        for ax in axes[:, col]:
            ax.legend()
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
