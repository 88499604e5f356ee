"""Bulk actions of the task browser on a lead's selection of tasks: mark gold with its answer, reopen, send
to review. Each is one transaction over the selected tasks of one project; ids of other projects are ignored.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef

from annotation.models import (
    COUNTED_JUDGMENTS,
    Adjudication,
    Choice,
    ComparisonTask,
    Judgment,
    Project,
    TaskKind,
    TaskStatus,
)

# The most tasks one bulk action takes (the browser sends at most a page; docs/security.md).
BULK_MAX_TASKS = 500


def _selected(project: Project, task_ids: list[int]):
    if not task_ids:
        raise ValidationError({"tasks": ["Select at least one task."]})
    if len(task_ids) > BULK_MAX_TASKS:
        raise ValidationError({"tasks": [f"At most {BULK_MAX_TASKS} tasks at once."]})
    tasks = ComparisonTask.objects.filter(project=project, pk__in=task_ids)
    # Lock in id order, as submits lock tasks, so a bulk action and a submit cannot deadlock.
    return list(tasks.select_for_update().order_by("pk").values_list("pk", flat=True))


@transaction.atomic
def tasks_mark_gold(*, project: Project, task_ids: list[int], gold_choice: str, explanation: str = "") -> int:
    """Make the tasks gold items with the known answer ``gold_choice`` (as shown, A/B in the task's own
    order). Gold items are served by the project's gold rate to every annotator once and are left out of
    snapshots by default. Swapped repeats cannot be gold. Returns how many tasks changed."""
    if gold_choice not in Choice.values:
        raise ValidationError({"gold_choice": [f"Must be one of {', '.join(Choice.values)}."]})
    ids = _selected(project, task_ids)
    return (
        ComparisonTask.objects.filter(pk__in=ids)
        .exclude(kind=TaskKind.REPEAT)
        .update(
            kind=TaskKind.GOLD, gold_choice=gold_choice, gold_explanation=explanation, status=TaskStatus.OPEN
        )
    )


@transaction.atomic
def tasks_reopen(*, project: Project, task_ids: list[int]) -> int:
    """Send the tasks back to annotators for k fresh answers: their counted judgments are kept but no longer
    count (``is_extra``, as a late answer past k), an adjudication is removed, and the task is open again.
    People who answered already are not asked again. Returns how many tasks were reopened."""
    ids = _selected(project, task_ids)
    Judgment.objects.filter(COUNTED_JUDGMENTS, task_id__in=ids).update(is_extra=True)
    Adjudication.objects.filter(task_id__in=ids).delete()
    return ComparisonTask.objects.filter(pk__in=ids).update(status=TaskStatus.OPEN, judgment_count=0)


@transaction.atomic
def tasks_send_to_review(*, project: Project, task_ids: list[int]) -> int:
    """Put the tasks in the project's review queue (a reviewer adjudicates them). Only tasks with at least
    one counted judgment and no adjudication yet, and not swapped repeats (which the queue leaves out).
    Returns how many tasks were sent."""
    ids = _selected(project, task_ids)
    judged = Judgment.objects.filter(COUNTED_JUDGMENTS, task=OuterRef("pk"))
    return (
        ComparisonTask.objects.filter(pk__in=ids)
        .filter(Exists(judged))
        .exclude(kind=TaskKind.REPEAT)
        .exclude(Exists(Adjudication.objects.filter(task=OuterRef("pk"))))
        .exclude(status=TaskStatus.NEEDS_REVIEW)
        .update(status=TaskStatus.NEEDS_REVIEW)
    )
