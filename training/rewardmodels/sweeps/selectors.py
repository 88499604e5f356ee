"""Reward-model sweep reads: the sweeps a user may see, and one sweep's trials as table rows and plot points."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from training.models import RewardModelSweep, SweepTrial


def sweep_list(*, projects=None, status: str | None = None) -> QuerySet[RewardModelSweep]:
    """Sweeps (newest first) of the given projects (sweeps without a project are shown to everyone)."""
    qs = RewardModelSweep.objects.select_related("snapshot", "project", "final_run")
    if projects is not None:
        qs = qs.filter(Q(project__in=projects) | Q(project__isnull=True))
    if status:
        qs = qs.filter(status=status)
    return qs


def sweep_trials(sweep: RewardModelSweep) -> QuerySet[SweepTrial]:
    """The sweep's trials in trial-number order, with their runs."""
    return SweepTrial.objects.filter(sweep=sweep).select_related("run").order_by("number")


def sweep_objective_points(sweep: RewardModelSweep) -> dict[str, list[list[float]]]:
    """{"objective": [[trial number, value], ...], "best so far": [...]} for the sweep's plot."""
    maximise = (sweep.config or {}).get("objective", "accuracy") == "accuracy"
    points, best, best_value = [], [], None
    for number, value in sweep_trials(sweep).exclude(value__isnull=True).values_list("number", "value"):
        points.append([number, value])
        if best_value is None or (value > best_value if maximise else value < best_value):
            best_value = value
        best.append([number, best_value])
    return {"objective": points, "best so far": best}
