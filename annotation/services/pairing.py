"""Active model pairing for battle projects: write each open task's ``priority_score`` from the variance
reduction of its model pair (``annotation.quality.active_pairing``), so assignment serves the most informative
pair first. Re-run after votes arrive (a Celery task after each judgment in such a project)."""

from __future__ import annotations

from collections import defaultdict

from annotation.models import ComparisonTask, ModelPairing, Project, TaskStatus
from annotation.quality.active_pairing import pair_priorities
from annotation.selectors.quality import UNKNOWN_MODEL, leaderboard_comparisons
from annotation.services.assignment import POOL_KINDS

# Rows per UPDATE: each statement holds its row locks only for its own few milliseconds.
UPDATE_BATCH = 1000


def pair_priorities_refresh(*, project: Project) -> int:
    """Re-score the open tasks of an active-pairing project by model pair; returns the tasks written.

    Each pair's score is its next vote's expected drop of the total Bradley-Terry variance, scaled so the best
    pair is 1. Tasks whose candidates are unnamed or from one model get no score (served after, in queue
    order). Projects with uniform pairing are left alone."""
    if project.model_pairing != ModelPairing.ACTIVE:
        return 0
    open_tasks = list(
        ComparisonTask.objects.filter(
            project=project, status=TaskStatus.OPEN, kind__in=POOL_KINDS
        ).values_list("id", "candidate_a__model_name", "candidate_b__model_name")
    )
    by_pair: dict[tuple[str, str], list[int]] = defaultdict(list)
    for task_id, a, b in open_tasks:
        if a == b or UNKNOWN_MODEL in (a, b):
            continue
        by_pair[(min(a, b), max(a, b))].append(task_id)
    if not by_pair:
        return 0
    model_a, model_b, outcome, weight = leaderboard_comparisons(project)
    models = sorted({name for pair in by_pair for name in pair} | set(model_a) | set(model_b))
    scores = pair_priorities(list(model_a), list(model_b), outcome, models=models, weight=weight).priority
    written = 0
    for pair, ids in by_pair.items():
        for start in range(0, len(ids), UPDATE_BATCH):
            chunk = ids[start : start + UPDATE_BATCH]
            written += ComparisonTask.objects.filter(pk__in=chunk, status=TaskStatus.OPEN).update(
                priority_score=scores[pair]
            )
    return written
