"""Task assignment: lease the next task for an annotator without ever over-filling a task's k slots.

Order of preference: the annotator's own live lease (resume), a gold item (at ``project.gold_rate``), a
swapped repeat of one of their earlier tasks (at ``project.swap_repeat_rate``), then the open task closest
to completion (or, by the project's ``serving_order``, the open task with the highest ``priority_score``, with a
``random_share`` served from a random start and marked ``served_random``; unscored tasks follow in queue
order). On PostgreSQL candidate rows are locked with ``FOR UPDATE SKIP LOCKED`` so concurrent
annotators step over each other's rows instead of waiting; slots are re-counted after the lock is held.
No call ever blocks on a row lock: when every eligible row is locked it backs off and looks again, and rows
it locked and rejected are released (savepoint rollback), so no lock cycle forms; a deadlock victim (e.g.
with a caller's own locks) is still retried here when this is the outermost transaction.
SQLite has no row locks (it serialises writers), so there the plain select is used.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection
from datetime import datetime, timedelta

from django.db import OperationalError, connection, transaction
from django.db.models import Count, Exists, F, IntegerField, Max, Min, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import (
    ComparisonTask,
    Judgment,
    Project,
    ServingOrder,
    TaskKind,
    TaskLease,
    TaskSkip,
    TaskStatus,
)

# Task kinds that share the common pool (gold and repeats are served by their own rules).
POOL_KINDS = [k.value for k in TaskKind if k not in (TaskKind.GOLD, TaskKind.REPEAT)]
# A repeat is only drawn from tasks judged before the annotator's latest few, so it comes "later".
REPEAT_MIN_GAP = 3
LOCK_BATCH = 2
# When every eligible row is locked by annotators being served, wait at most this long for one to free up.
LOCK_WAIT_SECONDS = 2.0
MAX_ATTEMPTS = 400
# Share of calls that also delete expired leases (they are ignored anyway; this keeps the table small).
HOUSEKEEPING_RATE = 0.01
DEADLOCK_RETRIES = 3


def _for_update(qs):
    """Lock the rows ``FOR UPDATE SKIP LOCKED`` where the database can; unlocked on SQLite."""
    if not connection.features.has_select_for_update:
        return qs
    if connection.features.has_select_for_update_skip_locked:
        return qs.select_for_update(skip_locked=True, of=("self",))
    return qs.select_for_update(of=("self",))


def _lease(task: ComparisonTask, annotator, now: datetime, seconds: int, served_random: bool = False) -> None:
    """Create or renew the annotator's lease in one statement (INSERT ... ON CONFLICT DO UPDATE)."""
    TaskLease.objects.bulk_create(
        [
            TaskLease(
                task=task,
                annotator=annotator,
                expires_at=now + timedelta(seconds=seconds),
                served_random=served_random,
            )
        ],
        update_conflicts=True,
        unique_fields=["task", "annotator"],
        update_fields=["expires_at", "served_random"],
    )


def _not_seen_by(qs, annotator):
    """Tasks the annotator has not judged nor skipped."""
    return qs.exclude(Exists(Judgment.objects.filter(task=OuterRef("pk"), annotator=annotator))).exclude(
        Exists(TaskSkip.objects.filter(task=OuterRef("pk"), annotator=annotator))
    )


def _resume(project: Project, annotator, now: datetime, exclude: Collection[int]) -> ComparisonTask | None:
    lease = (
        TaskLease.objects.filter(task__project=project, annotator=annotator, expires_at__gt=now)
        .exclude(task_id__in=exclude)
        .exclude(Exists(Judgment.objects.filter(task=OuterRef("task"), annotator=annotator)))
        .select_related("task")
        .order_by("created_at")
        .first()
    )
    return lease.task if lease else None


def _next_gold(project: Project, annotator, now: datetime, exclude: Collection[int]) -> ComparisonTask | None:
    qs = _not_seen_by(
        ComparisonTask.objects.filter(project=project, kind=TaskKind.GOLD).exclude(pk__in=exclude),
        annotator,
    )
    ids = list(qs.values_list("pk", flat=True)[:200])
    if not ids:
        return None
    task = ComparisonTask.objects.get(pk=random.choice(ids))
    _lease(task, annotator, now, project.lease_seconds)
    return task


def _next_repeat(project: Project, annotator, now: datetime) -> ComparisonTask | None:
    """Create (once per annotator and original) an A/B-swapped copy of a task they judged earlier."""
    recent = list(
        Judgment.objects.filter(task__project=project, annotator=annotator)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)[:REPEAT_MIN_GAP]
    )
    if len(recent) < REPEAT_MIN_GAP:
        return None
    already = ComparisonTask.objects.filter(
        kind=TaskKind.REPEAT, repeat_of=OuterRef("task"), metadata__for_annotator=annotator.pk
    )
    judged = (
        Judgment.objects.filter(
            task__project=project, annotator=annotator, task__kind=TaskKind.STANDARD, is_extra=False
        )
        .exclude(pk__in=recent)
        .exclude(Exists(already))
        .values_list("task_id", flat=True)[:200]
    )
    candidates = list(judged)
    if not candidates:
        return None
    original = ComparisonTask.objects.get(pk=random.choice(candidates))
    repeat = ComparisonTask.objects.create(
        project=project,
        prompt_id=original.prompt_id,
        candidate_a_id=original.candidate_b_id,
        candidate_b_id=original.candidate_a_id,
        kind=TaskKind.REPEAT,
        repeat_of=original,
        metadata={"for_annotator": annotator.pk},
    )
    _lease(repeat, annotator, now, project.lease_seconds)
    return repeat


def _live_lease_count(now: datetime):
    return Coalesce(
        Subquery(
            TaskLease.objects.filter(task=OuterRef("pk"), expires_at__gt=now)
            .values("task")
            .annotate(n=Count("pk"))
            .values("n")[:1],
            output_field=IntegerField(),
        ),
        Value(0),
    )


def _serving_mode(project: Project) -> str:
    """'queue', 'priority' or 'random' for this call, by the project's serving order."""
    if project.serving_order == ServingOrder.QUEUE:
        return "queue"
    if project.serving_order == ServingOrder.MIX and random.random() < project.random_share:
        return "random"
    return "priority"


def _next_pool_task(
    project: Project, annotator, now: datetime, exclude: Collection[int]
) -> ComparisonTask | None:
    k = project.overlap_k
    base = _not_seen_by(
        ComparisonTask.objects.filter(
            project=project, status=TaskStatus.OPEN, kind__in=POOL_KINDS, judgment_count__lt=k
        ),
        annotator,
    )
    if exclude:
        base = base.exclude(pk__in=exclude)
    base = base.annotate(live_leases=_live_lease_count(now)).filter(
        live_leases__lt=Value(k) - F("judgment_count")
    )
    mode = _serving_mode(project)
    if mode == "priority":
        # Walks task_priority_idx (open, scored tasks only); unscored tasks follow in queue order.
        scored = base.filter(priority_score__isnull=False).order_by(
            "-priority_score", "-judgment_count", "id"
        )
        task = _lock_first(scored, project, annotator, now)
        if task is not None:
            return task
    elif mode == "random":
        # A random start in the project's open id range, then the next open task in id order
        # (task_open_id_idx), wrapping around: chosen without looking at any model's opinion.
        span = ComparisonTask.objects.filter(project=project, status=TaskStatus.OPEN).aggregate(
            lo=Min("id"), hi=Max("id")
        )
        if span["lo"] is not None:
            start = random.randint(span["lo"], span["hi"])
            for part in (base.filter(id__gte=start), base.filter(id__lt=start)):
                task = _lock_first(part.order_by("id"), project, annotator, now, served_random=True)
                if task is not None:
                    return task
    return _lock_first(base.order_by("-judgment_count", "id"), project, annotator, now)


def _lock_first(
    ordered, project: Project, annotator, now: datetime, served_random: bool = False
) -> ComparisonTask | None:
    """Lease the first task of ``ordered`` that still has a free slot once its row lock is held."""
    k = project.overlap_k
    tried: list[int] = []
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    for _ in range(MAX_ATTEMPTS):
        qs = ordered.exclude(pk__in=tried) if tried else ordered
        # Each attempt runs in a savepoint: rolling it back releases the row locks of the tasks we rejected.
        savepoint = transaction.savepoint()
        batch = list(_for_update(qs)[:LOCK_BATCH])
        if not batch:
            transaction.savepoint_rollback(savepoint)
            # Everything left may be locked by annotators being served right now. Never block on a row
            # lock here (a blocked FOR UPDATE keeps rows it locked and then rejected: a deadlock cycle);
            # back off briefly and look again while unlocked work remains.
            if not qs.exists() or time.monotonic() > deadline:
                return None
            time.sleep(random.uniform(0.005, 0.025))
            continue
        for task in batch:
            # The row lock is ours now: re-count slots with a fresh statement (sees committed leases).
            fresh = (
                ComparisonTask.objects.filter(pk=task.pk)
                .annotate(
                    others=Count(
                        "leases",
                        filter=Q(leases__expires_at__gt=now) & ~Q(leases__annotator=annotator),
                    )
                )
                .values("judgment_count", "status", "others")
                .first()
            )
            if fresh and fresh["status"] == TaskStatus.OPEN and fresh["judgment_count"] + fresh["others"] < k:
                _lease(task, annotator, now, project.lease_seconds, served_random=served_random)
                transaction.savepoint_commit(savepoint)
                task.judgment_count = fresh["judgment_count"]
                return task
        transaction.savepoint_rollback(savepoint)
        tried.extend(task.pk for task in batch)
    return None


def _is_deadlock(exc: OperationalError) -> bool:
    code = getattr(getattr(exc, "__cause__", None), "sqlstate", None)
    return code in ("40P01", "40001")  # deadlock_detected, serialization_failure


def task_next_for_annotator(
    *, project: Project, annotator, now: datetime | None = None, exclude: Collection[int] = ()
) -> ComparisonTask | None:
    """Lease and return the next task for ``annotator`` in ``project``, or None when nothing is left.

    ``exclude``: task ids the caller already holds (the annotate page's current and prefetched tasks, and
    answers still waiting to be sent), so it can lease the one after them; their leases are kept."""
    now = now or timezone.now()
    # A deadlock victim is retried here when this is the outermost transaction (nothing else of the caller
    # is lost by the rollback); inside a caller's transaction the error goes up to the caller.
    attempts = 1 if connection.in_atomic_block else DEADLOCK_RETRIES
    for attempt in range(attempts):
        try:
            return _task_next(project=project, annotator=annotator, now=now, exclude=exclude)
        except OperationalError as exc:
            if attempt == attempts - 1 or not _is_deadlock(exc):
                raise
    return None  # unreachable


def _task_next(
    *, project: Project, annotator, now: datetime, exclude: Collection[int]
) -> ComparisonTask | None:
    with transaction.atomic():
        if random.random() < HOUSEKEEPING_RATE:
            TaskLease.objects.filter(expires_at__lte=now).delete()
        task = _resume(project, annotator, now, exclude)
        if task is not None:
            return task
        if project.gold_rate > 0 and random.random() < project.gold_rate:
            task = _next_gold(project, annotator, now, exclude)
            if task is not None:
                return task
        if project.swap_repeat_rate > 0 and random.random() < project.swap_repeat_rate:
            task = _next_repeat(project, annotator, now)
            if task is not None:
                return task
        return _next_pool_task(project, annotator, now, exclude)


def lease_release(*, task: ComparisonTask, annotator) -> None:
    """Give a leased task back to the pool (e.g. the annotator closed the page)."""
    TaskLease.objects.filter(task=task, annotator=annotator).delete()


def leases_expire(*, now: datetime | None = None) -> int:
    """Delete expired leases (housekeeping; expired leases are already ignored by assignment)."""
    deleted, _ = TaskLease.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
