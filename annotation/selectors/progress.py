"""Progress numbers for annotators: how far a project is, and how far the user is toward the project's
daily target. Shown by ``templates/annotation/_progress.html`` on the home and annotate pages."""

from __future__ import annotations

from datetime import datetime

from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone

from annotation.models import ComparisonTask, Judgment, Project, TaskStatus

# The project-wide count is shared by every annotator of the project and changes slowly: cached briefly,
# so a busy annotate page does not count a big project's tasks on every judgment.
PROJECT_PROGRESS_CACHE_S = 60
DONE_STATUSES = (TaskStatus.COMPLETE, TaskStatus.ADJUDICATED)


def _start_of_today(now: datetime | None = None) -> datetime:
    return timezone.localtime(now or timezone.now()).replace(hour=0, minute=0, second=0, microsecond=0)


def _bar(done: int, total: int | None) -> dict | None:
    if not total:
        return None
    return {"done": done, "total": total, "percent": min(100, round(100 * done / total))}


def project_completion(*, project: Project) -> dict:
    """{"done", "total"}: tasks complete or adjudicated, of all the project's tasks (cached 60 s)."""
    key = f"preflab:project-progress:{project.pk}"
    value = cache.get(key)
    if value is None:
        value = ComparisonTask.objects.filter(project=project).aggregate(
            total=Count("pk"), done=Count("pk", filter=Q(status__in=DONE_STATUSES))
        )
        cache.set(key, value, PROJECT_PROGRESS_CACHE_S)
    return value


def progress_bars(
    *, project: Project, user, done_today: int | None = None, completion: dict | None = None
) -> dict:
    """The two bars of ``_progress.html``: the project's tasks done, and the user's judgments today against
    the project's ``daily_target`` (None when the project sets none)."""
    completion = completion or project_completion(project=project)
    if done_today is None:
        done_today = Judgment.objects.filter(
            task__project=project, annotator=user, created_at__gte=_start_of_today()
        ).count()
    daily = _bar(done_today, project.daily_target)
    return {
        "project": _bar(completion["done"] or 0, completion["total"]),
        "daily": daily,
        "done_today": done_today,
    }


def home_progress(*, projects, user) -> dict[int, dict]:
    """``progress_bars`` for each of ``projects`` (task counts from the cached ``project_completion``, the
    user's judgments today in one grouped query), keyed by project id."""
    projects = list(projects)
    ids = [p.pk for p in projects]
    # Per project through the cached count: grouping every task of every project on each home page view
    # costs a scan of all their tasks (400k rows for a 1M-judgment project).
    totals = {p.pk: project_completion(project=p) for p in projects}
    today = dict(
        Judgment.objects.filter(task__project_id__in=ids, annotator=user, created_at__gte=_start_of_today())
        .values("task__project_id")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("task__project_id", "n")
    )
    return {
        p.pk: progress_bars(
            project=p,
            user=user,
            done_today=today.get(p.pk, 0),
            completion=totals.get(p.pk, {"done": 0, "total": 0}),
        )
        for p in projects
    }
