"""Annotator dashboard numbers: own counts, agreement with consensus, gold accuracy, swap consistency."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from django.utils import timezone

from annotation.models import COUNTED_JUDGMENTS, Adjudication, Choice, ComparisonTask, Judgment, TaskKind

# The answer a swapped repeat should get if the annotator is consistent.
SWAPPED = {Choice.A: Choice.B, Choice.B: Choice.A, Choice.TIE: Choice.TIE, Choice.BOTH_BAD: Choice.BOTH_BAD}


def _ratio(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def consensus_choice(choices: list[str]) -> str | None:
    """The strict majority among judgments, or None when there is none."""
    if not choices:
        return None
    (top, n), *rest = Counter(choices).most_common()
    if rest and rest[0][1] == n:
        return None
    return top


def annotator_dashboard(*, annotator, projects=None, now: datetime | None = None) -> dict:
    """Per-annotator quality numbers over the given projects (all when None); gold numbers count only the
    projects with ``gold_feedback`` on."""
    now = now or timezone.now()
    mine = Judgment.objects.filter(annotator=annotator)
    if projects is not None:
        mine = mine.filter(task__project__in=projects)
    rows = list(
        mine.values(
            "task_id",
            "choice",
            "task__kind",
            "task__gold_choice",
            "task__repeat_of_id",
            "task__project__gold_feedback",
        )
    )
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    counts = {
        "total": len(rows),
        "today": mine.filter(created_at__gte=start).count(),
        "last_7_days": mine.filter(created_at__gte=now - timedelta(days=7)).count(),
        "skipped": annotator.skips.count(),
    }

    # Gold accuracy, only where the project tells annotators the gold answer (``gold_feedback``): elsewhere
    # a count that moves after a submit would say which task was gold and whether the answer was right.
    gold = [r for r in rows if r["task__kind"] == TaskKind.GOLD and r["task__project__gold_feedback"]]
    gold_hits = sum(r["choice"] == r["task__gold_choice"] for r in gold)

    # Agreement with consensus on shared standard tasks (adjudicated answer wins, else strict majority
    # of the other annotators' counted judgments).
    shared = [r["task_id"] for r in rows if r["task__kind"] not in (TaskKind.GOLD, TaskKind.REPEAT)]
    others: dict[int, list[str]] = defaultdict(list)
    for task_id, choice in (
        Judgment.objects.filter(COUNTED_JUDGMENTS, task_id__in=shared)  # priors are no annotator's consensus
        .exclude(annotator=annotator)
        .values_list("task_id", "choice")
    ):
        others[task_id].append(choice)
    adjudicated = dict(Adjudication.objects.filter(task_id__in=shared).values_list("task_id", "choice"))
    agree = compared = 0
    for r in rows:
        if r["task_id"] not in others and r["task_id"] not in adjudicated:
            continue
        reference = adjudicated.get(r["task_id"]) or consensus_choice(others[r["task_id"]])
        if reference is None:
            continue
        compared += 1
        agree += r["choice"] == reference

    # Consistency on swapped repeats.
    repeats = [r for r in rows if r["task__kind"] == TaskKind.REPEAT and r["task__repeat_of_id"]]
    originals = dict(
        Judgment.objects.filter(
            annotator=annotator, task_id__in=[r["task__repeat_of_id"] for r in repeats]
        ).values_list("task_id", "choice")
    )
    consistent = checked = 0
    for r in repeats:
        original = originals.get(r["task__repeat_of_id"])
        if original is None:
            continue
        checked += 1
        consistent += SWAPPED.get(original) == r["choice"]

    return {
        "counts": counts,
        "gold": {"answered": len(gold), "correct": gold_hits, "accuracy": _ratio(gold_hits, len(gold))},
        "consensus": {"compared": compared, "agreed": agree, "agreement": _ratio(agree, compared)},
        "repeats": {"checked": checked, "consistent": consistent, "consistency": _ratio(consistent, checked)},
        "open_tasks": ComparisonTask.objects.filter(leases__annotator=annotator).count(),
    }
