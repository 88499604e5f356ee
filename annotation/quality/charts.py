"""Server-rendered charts (matplotlib, Agg backend) as SVG data URIs for the quality and leaderboard pages.

Pages embed them as ``<img src="data:image/svg+xml;base64,...">``: an SVG loaded as an image cannot run
scripts, so names inside a chart need no further escaping. Each function takes the plain data the selectors
return (the same numbers the JSON API serves).
"""

from __future__ import annotations

import base64
import functools
import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402 - the backend must be chosen first

# The object API (Figure, not pyplot) keeps no global figure state, so threads of a web server can draw at once.
STYLE = {"font.size": 9, "svg.fonttype": "path", "axes.spines.top": False, "axes.spines.right": False}


def _styled(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def _subplots(figsize: tuple[float, float]):
    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


def _svg(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@_styled
def leaderboard_chart(models: list[dict]) -> str | None:
    """Horizontal bars: rating with its bootstrap interval, best model on top."""
    if not models:
        return None
    names = [m["model"] for m in models][::-1]
    rating = np.array([m["rating"] for m in models][::-1], dtype=float)
    low = np.array([m["low"] if m["low"] is not None else m["rating"] for m in models][::-1], dtype=float)
    high = np.array([m["high"] if m["high"] is not None else m["rating"] for m in models][::-1], dtype=float)
    fig, ax = _subplots((6.5, 0.35 * len(names) + 1.0))
    ax.errorbar(rating, np.arange(len(names)), xerr=[rating - low, high - rating], fmt="o", capsize=3)
    ax.set_yticks(np.arange(len(names)), names)
    ax.axvline(1000, color="#999", lw=0.8, ls="--")
    ax.set_xlabel("Rating (Elo-like, 95% bootstrap interval)")
    return _svg(fig)


@_styled
def win_rate_heatmap(order: list[str], win_rate: list[list[float | None]]) -> str | None:
    """Row model's empirical win rate against the column model (ties half); blank where they never met."""
    if not order:
        return None
    w = np.array([[np.nan if x is None else x for x in row] for row in win_rate], dtype=float)
    size = 0.45 * len(order) + 1.5
    fig, ax = _subplots((size + 1.0, size))
    im = ax.imshow(w, cmap="RdBu", vmin=0, vmax=1)
    ax.set_xticks(np.arange(len(order)), order, rotation=60, ha="right")
    ax.set_yticks(np.arange(len(order)), order)
    if len(order) <= 15:
        for i in range(len(order)):
            for j in range(len(order)):
                if np.isfinite(w[i, j]):
                    ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.046, label="win rate (row beats column)")
    return _svg(fig)


@_styled
def agreement_chart(metrics: dict) -> str | None:
    """Point estimates and intervals of the project-level agreement metrics."""
    labels = {
        "raw_agreement": "Raw agreement",
        "fleiss_kappa": "Fleiss' kappa",
        "krippendorff_alpha_nominal": "Krippendorff alpha (nominal)",
        "krippendorff_alpha_ordinal": "Krippendorff alpha (ordinal)",
    }
    rows = [(labels[k], metrics[k]) for k in labels if metrics.get(k) and metrics[k]["value"] is not None]
    if not rows:
        return None
    fig, ax = _subplots((6.5, 0.4 * len(rows) + 1.0))
    for y, (_, m) in enumerate(rows[::-1]):
        lo = m["low"] if m["low"] is not None else m["value"]
        hi = m["high"] if m["high"] is not None else m["value"]
        ax.errorbar(
            m["value"], y, xerr=[[m["value"] - lo], [hi - m["value"]]], fmt="o", capsize=3, color="#2f6feb"
        )
    ax.set_yticks(np.arange(len(rows)), [r[0] for r in rows[::-1]])
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_xlim(min(-0.1, ax.get_xlim()[0]), 1.05)
    ax.set_xlabel("value with 95% bootstrap interval")
    return _svg(fig)


LABELLED_POINTS = 60


@_styled
def annotator_scatter(rows: list[dict]) -> str | None:
    """Each annotator: Dawid-Skene reliability against leave-one-out consensus agreement; flagged in red."""
    pts = [r for r in rows if r.get("reliability") is not None and r.get("consensus_agreement") is not None]
    if not pts:
        return None
    fig, ax = _subplots((5.5, 4.0))
    x = np.array([r["consensus_agreement"] for r in pts])
    y = np.array([r["reliability"] for r in pts])
    flagged = np.array([bool(r.get("quarantined")) for r in pts])
    size = 12 + 2 * np.sqrt(np.array([r["n"] for r in pts], dtype=float))
    # One scatter for all points (a thousand annotators are a thousand artists otherwise); names only where
    # they stay readable: every point of a small team, the flagged ones of a big one.
    ax.scatter(x, y, s=size, c=np.where(flagged, "#cf222e", "#2f6feb"), alpha=0.7)
    for r, xi, yi, f in zip(pts, x, y, flagged, strict=True):
        if len(pts) <= LABELLED_POINTS or (f and flagged.sum() <= LABELLED_POINTS):
            ax.annotate(r["username"], (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("agreement with leave-one-out consensus")
    ax.set_ylabel("Dawid-Skene reliability")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    return _svg(fig)


@_styled
def annotator_detail_charts(detail: dict, fast_ms: int) -> dict[str, str | None]:
    """Daily volume, time-per-task histogram and the drift CUSUM path of one annotator."""
    out: dict[str, str | None] = {"volume": None, "times": None, "drift": None}
    volume = detail["stats"]["daily_volume"]
    if volume:
        fig, ax = _subplots((6.0, 2.4))
        ax.bar(list(volume), list(volume.values()), color="#2f6feb")
        ax.set_ylabel("judgments per day")
        ax.tick_params(axis="x", rotation=45)
        out["volume"] = _svg(fig)
    times = np.array(detail["times_ms"], dtype=float) / 1000.0
    if len(times):
        fig, ax = _subplots((6.0, 2.4))
        ax.hist(np.clip(times, 0, np.percentile(times, 99) + 1), bins=30, color="#667085")
        ax.axvline(fast_ms / 1000.0, color="#cf222e", ls="--", label="implausibly fast")
        if detail.get("project_median_time_ms"):
            ax.axvline(
                detail["project_median_time_ms"] / 1000.0, color="#1a7f37", ls=":", label="project median"
            )
        ax.set_xlabel("seconds per task")
        ax.legend(fontsize=7)
        out["times"] = _svg(fig)
    path = detail["drift"].get("path")
    if path:
        fig, ax = _subplots((6.0, 2.4))
        ax.plot(np.arange(len(path)), path, color="#2f6feb")
        ax.axhline(detail["drift"]["threshold"], color="#cf222e", ls="--", label="alarm threshold")
        ax.set_xlabel("recent judgments (oldest first)")
        ax.set_ylabel("CUSUM")
        ax.legend(fontsize=7)
        out["drift"] = _svg(fig)
    return out
