"""Web pages of reward-model sweeps: the list with a start form, one sweep's trials (table and objective
plot), cancel and resume. The snapshot page carries the same start form."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.auth import visible_projects
from training import run_charts
from training.access import require_engineer
from training.datasets.selectors import snapshot_get, snapshot_list
from training.models import JobStatus, RewardModelSweep
from training.rewardmodels.sweeps.config import default_space_json
from training.rewardmodels.sweeps.selectors import sweep_list, sweep_objective_points, sweep_trials
from training.rewardmodels.sweeps.services import sweep_cancel, sweep_create, sweep_resume

WHAT = "Reward-model sweeps"


def _shown(value) -> str:
    if value is None:
        return "–"
    return (
        f"{value:.4g}"
        if isinstance(value, float)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


def _sweep_or_404(user, sweep_id: int) -> RewardModelSweep:
    sweep = sweep_list(projects=visible_projects(user)).filter(pk=sweep_id).first()
    if sweep is None:
        raise Http404("No such sweep.")
    return sweep


@login_required
def sweep_list_page(request):
    require_engineer(request.user, what=WHAT)
    sweeps = list(sweep_list(projects=visible_projects(request.user), status=request.GET.get("status"))[:200])
    snapshots = snapshot_list(user=request.user).filter(status=JobStatus.SUCCEEDED)[:100]
    return render(
        request,
        "training/sweeps/list.html",
        {"sweeps": sweeps, "snapshots": snapshots, "space_json": default_space_json()},
    )


def _form_config(post) -> dict:
    """The sweep config a start form describes (the service parses and checks it)."""
    config: dict = {}
    for name in ("n_trials", "parallelism"):
        raw = post.get(name, "").strip()
        if raw:
            config[name] = int(raw)
    for name in ("objective", "sampler"):
        if post.get(name):
            config[name] = post[name]
    for name in ("space", "base"):
        raw = post.get(name, "").strip()
        if raw:
            try:
                config[name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ValidationError({f"config.{name}": f"config.{name}: not JSON ({exc})"}) from None
    return config


@login_required
@require_POST
def sweep_create_page(request):
    require_engineer(request.user, what=WHAT)
    try:
        snapshot = snapshot_get(user=request.user, snapshot_id=int(request.POST.get("snapshot", "")))
    except ValueError:
        snapshot = None
    if snapshot is None:
        messages.error(request, "Pick a ready snapshot.")
        return redirect("training:sweep_list")
    try:
        sweep = sweep_create(
            snapshot=snapshot,
            base_model=request.POST.get("base_model", "").strip(),
            config=_form_config(request.POST),
            seed=int(request.POST.get("seed") or 42),
            user=request.user,
        )
    except ValidationError as exc:
        messages.error(request, "Could not start the sweep: " + "; ".join(exc.messages))
        return redirect("training:sweep_list")
    except ValueError as exc:
        messages.error(request, f"Could not start the sweep: {exc}")
        return redirect("training:sweep_list")
    messages.success(request, f"Sweep {sweep.pk} queued on the training queue.")
    return redirect("training:sweep_detail", sweep_id=sweep.pk)


@login_required
def sweep_detail_page(request, sweep_id: int):
    require_engineer(request.user, what=WHAT)
    sweep = _sweep_or_404(request.user, sweep_id)
    trials = list(sweep_trials(sweep))
    points = sweep_objective_points(sweep)
    objective = (sweep.config or {}).get("objective", "accuracy")
    chart = run_charts.trials_chart_svg(
        points["objective"], points["best so far"], f"Validation {objective} by trial"
    )
    names = list((sweep.config or {}).get("space") or {})
    searched = [n for n in names if (sweep.config["space"] or {}).get(n) is not None]
    rows = [{"trial": t, "params": [_shown(t.params.get(n)) for n in searched]} for t in trials]
    return render(
        request,
        "training/sweeps/detail.html",
        {
            "sweep": sweep,
            "rows": rows,
            "searched": searched,
            "chart": chart,
            "objective": objective,
            "live": sweep.status in (JobStatus.QUEUED, JobStatus.RUNNING),
        },
    )


@login_required
@require_POST
def sweep_cancel_page(request, sweep_id: int):
    require_engineer(request.user, what=WHAT)
    try:
        sweep = sweep_cancel(sweep=_sweep_or_404(request.user, sweep_id))
        messages.info(request, f"Sweep {sweep.pk} cancelled; its running trial stops at its next step.")
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    return redirect("training:sweep_detail", sweep_id=sweep_id)


@login_required
@require_POST
def sweep_resume_page(request, sweep_id: int):
    require_engineer(request.user, what=WHAT)
    try:
        sweep = sweep_resume(sweep=_sweep_or_404(request.user, sweep_id))
        messages.info(request, f"Sweep {sweep.pk} resumed: the same study goes on.")
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    return redirect("training:sweep_detail", sweep_id=sweep_id)
