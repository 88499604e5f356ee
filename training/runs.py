"""Training-run reads: lists filtered to what a user may see, the metric series for charts, live state."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from training.models import RunMetric, TrainingRun


def run_list(*, projects=None, kind: str | None = None, status: str | None = None) -> QuerySet[TrainingRun]:
    """Runs (newest first) of the given projects (runs without a project are shown to everyone)."""
    qs = TrainingRun.objects.select_related("snapshot", "project", "created_by")
    if projects is not None:
        qs = qs.filter(Q(project__in=projects) | Q(project__isnull=True))
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    return qs


def run_metric_series(run: TrainingRun, *, after_step: int = -1) -> dict[str, list[list[float]]]:
    """{metric: [[step, value], ...]} for a run's logged metrics (optionally only after a step)."""
    series: dict[str, list[list[float]]] = {}
    rows = (
        RunMetric.objects.filter(run=run, step__gt=after_step)
        .order_by("step", "id")
        .values_list("step", "values")
    )
    for step, values in rows:
        for name, value in values.items():
            series.setdefault(name, []).append([step, value])
    return series


def run_live_state(run: TrainingRun) -> dict:
    """What the run-detail page polls: status, progress, ETA, latest metrics, log tail, series."""
    return {
        "id": run.pk,
        "status": run.status,
        "status_reason": run.status_reason,
        "step": run.step,
        "total_steps": run.total_steps,
        "eta_seconds": run.eta_seconds,
        "heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None,
        "latest": (run.summary or {}).get("latest", {}),
        "log_tail": run.log_tail,
        "series": run_metric_series(run),
        "cancel_requested": run.cancel_requested,
    }
