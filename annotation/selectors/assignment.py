"""Reads for the annotation pages: the task an annotator sees, progress, the reviewer queue."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.utils import timezone

from annotation.models import (
    ComparisonTask,
    Judgment,
    Project,
    TaskKind,
    TaskLease,
    TaskSkip,
    TaskStatus,
)
from annotation.services.assignment import POOL_KINDS

# Counting a huge queue on every page is wasted work: beyond this many, the page says "1,000+".
LEFT_IN_QUEUE_CAP = 1_000


def task_for_display(*, task_id: int) -> ComparisonTask:
    return ComparisonTask.objects.select_related("prompt", "candidate_a", "candidate_b", "project").get(
        pk=task_id
    )


def annotator_progress(*, project: Project, annotator, now: datetime | None = None) -> dict:
    """Done today (in this project) and the tasks left for this annotator (counted up to a cap)."""
    now = now or timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    done_today = Judgment.objects.filter(
        task__project=project, annotator=annotator, created_at__gte=start
    ).count()
    left = (
        ComparisonTask.objects.filter(
            project=project,
            status=TaskStatus.OPEN,
            kind__in=POOL_KINDS,
            judgment_count__lt=project.overlap_k,
        )
        .exclude(Exists(Judgment.objects.filter(task=OuterRef("pk"), annotator=annotator)))
        .exclude(Exists(TaskSkip.objects.filter(task=OuterRef("pk"), annotator=annotator)))
        .order_by("-judgment_count", "id")  # walk task_queue_idx, not the primary key
        .values("pk")[:LEFT_IN_QUEUE_CAP]
        .count()
    )
    shown = f"{LEFT_IN_QUEUE_CAP:,}+" if left >= LEFT_IN_QUEUE_CAP else str(left)
    return {"done_today": done_today, "left_in_queue": left, "left_in_queue_display": shown}


def lease_for(*, task: ComparisonTask, annotator) -> TaskLease | None:
    return TaskLease.objects.filter(task=task, annotator=annotator).first()


def last_undoable_judgment(*, project: Project, annotator, now: datetime | None = None) -> Judgment | None:
    """The annotator's latest judgment in a project if it is still inside the undo grace period."""
    now = now or timezone.now()
    judgment = (
        Judgment.objects.filter(task__project=project, annotator=annotator, source="human")
        .select_related("task")
        .order_by("-created_at", "-id")
        .first()
    )
    if judgment is None or (now - judgment.created_at).total_seconds() > project.undo_grace_seconds:
        return None
    if judgment.task.kind == TaskKind.GOLD:  # gold answers cannot be undone (services.judgments)
        return None
    return judgment


def review_queue(*, projects: QuerySet[Project]) -> QuerySet[ComparisonTask]:
    """Tasks whose judgments disagree, oldest first, with judgments (and annotators) prefetched."""
    return (
        ComparisonTask.objects.filter(project__in=projects, status=TaskStatus.NEEDS_REVIEW)
        .exclude(kind=TaskKind.REPEAT)
        .select_related("prompt", "candidate_a", "candidate_b", "project")
        .prefetch_related(
            Prefetch(
                "judgments",
                queryset=Judgment.objects.select_related("annotator").order_by("created_at"),
            )
        )
        .order_by("created_at", "id")
    )
