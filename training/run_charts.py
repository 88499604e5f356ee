"""Small server-rendered SVG charts for the run and reward-model pages (no JS charting library): line
charts of training curves, the reliability diagram, and bar charts (accuracy by length difference).

Every number is formatted by us and every label escaped, so the SVG can be inlined with ``|safe``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

W, H, PAD = 420, 220, 36
COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea")


def _scale(lo: float, hi: float, out_lo: float, out_hi: float):
    span = (hi - lo) or 1.0
    return lambda v: out_lo + (v - lo) / span * (out_hi - out_lo)


def _frame(title: str, body: str, y_lo: float, y_hi: float, x_label: str = "") -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
        f'role="img" aria-label="{escape(title)}" class="chart">'
        f'<text x="{W / 2:.0f}" y="14" text-anchor="middle" font-size="12">{escape(title)}</text>'
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 8}" y2="{H - PAD}" stroke="#888"/>'
        f'<line x1="{PAD}" y1="22" x2="{PAD}" y2="{H - PAD}" stroke="#888"/>'
        f'<text x="{PAD - 4}" y="26" text-anchor="end" font-size="9">{y_hi:.3g}</text>'
        f'<text x="{PAD - 4}" y="{H - PAD}" text-anchor="end" font-size="9">{y_lo:.3g}</text>'
        f'<text x="{W / 2:.0f}" y="{H - 6}" text-anchor="middle" font-size="10">{escape(x_label)}</text>'
        f"{body}</svg>"
    )


def line_chart_svg(series: dict[str, Sequence[Sequence[float]]], title: str, x_label: str = "step") -> str:
    """One polyline per named series of [x, y] points."""
    points = [(x, y) for s in series.values() for x, y in s if y is not None and math.isfinite(y)]
    if not points:
        return _frame(title + " (no data yet)", "", 0, 1, x_label)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    fx = _scale(min(xs), max(xs), PAD, W - 8)
    fy = _scale(min(ys), max(ys), H - PAD, 22)
    body = []
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in pts if y is not None and math.isfinite(y))
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>')
        body.append(
            f'<text x="{W - 10}" y="{30 + 12 * i}" text-anchor="end" font-size="10" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    body.append(f'<text x="{W - 8}" y="{H - PAD + 12}" text-anchor="end" font-size="9">{max(xs):.4g}</text>')
    return _frame(title, "".join(body), min(ys), max(ys), x_label)


def reliability_svg(bins: Sequence[dict], title: str = "Reliability diagram") -> str:
    """Mean predicted probability (x) against observed frequency (y) per bin, with the diagonal."""
    fx = _scale(0, 1, PAD, W - 8)
    fy = _scale(0, 1, H - PAD, 22)
    body = [f'<line x1="{fx(0)}" y1="{fy(0)}" x2="{fx(1)}" y2="{fy(1)}" stroke="#bbb" stroke-dasharray="4"/>']
    total = sum(b.get("count", 0) for b in bins) or 1
    for b in bins:
        if not b.get("count"):
            continue
        x0, x1 = fx(b["lo"]), fx(b["hi"])
        body.append(
            f'<rect x="{x0 + 1:.1f}" y="{fy(b["accuracy"]):.1f}" width="{x1 - x0 - 2:.1f}" '
            f'height="{fy(0) - fy(b["accuracy"]):.1f}" fill="#2563eb" fill-opacity="'
            f'{0.25 + 0.75 * b["count"] / total:.2f}"><title>p~{b["confidence"]:.2f}: observed '
            f"{b['accuracy']:.2f} (n={b['count']})</title></rect>"
        )
        body.append(
            f'<circle cx="{fx(b["confidence"]):.1f}" cy="{fy(b["accuracy"]):.1f}" r="2.5" fill="#dc2626"/>'
        )
    return _frame(title, "".join(body), 0, 1, "predicted P(chosen wins)")


def bar_chart_svg(
    labels: Sequence[str], values: Sequence[float | None], title: str, y_max: float = 1.0
) -> str:
    """Vertical bars (None draws nothing), e.g. accuracy per response-length-difference bucket."""
    n = max(len(labels), 1)
    fy = _scale(0, y_max, H - PAD, 22)
    width = (W - PAD - 8) / n
    body = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = PAD + i * width
        if value is not None:
            body.append(
                f'<rect x="{x + 3:.1f}" y="{fy(value):.1f}" width="{width - 6:.1f}" '
                f'height="{fy(0) - fy(value):.1f}" fill="#16a34a"><title>{value:.3f}</title></rect>'
            )
        body.append(
            f'<text x="{x + width / 2:.1f}" y="{H - PAD + 12}" text-anchor="middle" font-size="9">'
            f"{escape(label)}</text>"
        )
    return _frame(title, "".join(body), 0, y_max, "")


def length_bucket_label(lo: float | None, hi: float | None) -> str:
    if lo is None:
        return f"< {hi:g}"
    if hi is None:
        return f">= {lo:g}"
    return f"{lo:g}..{hi:g}"


def trials_chart_svg(
    points: Sequence[Sequence[float]], best: Sequence[Sequence[float]], title: str, x_label: str = "trial"
) -> str:
    """A sweep's objective per trial (one dot each, with the value as a tooltip) and the best-so-far line."""
    every = [(x, y) for x, y in [*points, *best] if y is not None and math.isfinite(y)]
    if not every:
        return _frame(title + " (no finished trial yet)", "", 0, 1, x_label)
    xs, ys = [p[0] for p in every], [p[1] for p in every]
    fx = _scale(min(xs) - 0.5, max(xs) + 0.5, PAD, W - 8)
    fy = _scale(min(ys), max(ys), H - PAD, 22)
    coords = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in best)
    body = [f'<polyline fill="none" stroke="{COLOURS[2]}" stroke-width="1.5" points="{coords}"/>']
    for x, y in points:
        body.append(
            f'<circle cx="{fx(x):.1f}" cy="{fy(y):.1f}" r="3.5" fill="{COLOURS[0]}">'
            f"<title>trial {int(x)}: {y:.4g}</title></circle>"
        )
    for i, (name, colour) in enumerate((("trial", COLOURS[0]), ("best so far", COLOURS[2]))):
        body.append(
            f'<text x="{W - 10}" y="{30 + 12 * i}" text-anchor="end" font-size="10" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    body.append(f'<text x="{W - 8}" y="{H - PAD + 12}" text-anchor="end" font-size="9">{max(xs):.0f}</text>')
    return _frame(title, "".join(body), min(ys), max(ys), x_label)
