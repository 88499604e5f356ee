"""Web pages of the policy loop for ML engineers: policy runs (list + launch form), the live run page (metric
plots, failure-detector warnings with evidence, sample responses, the evaluation gate's verdict) and the
OpenRLHF export."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.auth import visible_projects
from training import run_charts
from training.access import require_engineer
from training.datasets.selectors import snapshot_list
from training.models import POLICY_VERSION_KINDS, JobStatus, RunKind, TrainingRun
from training.policy.capability.selectors import capability_table
from training.policy.openrlhf import DEFAULT_REWARD_SERVER_URL, OpenRLHFCluster
from training.policy.selectors import (
    CHART_GROUPS,
    POLICY_KINDS,
    battle_verdict,
    policy_run_list,
    policy_run_state,
    policy_version_of_run,
    spot_check_counts,
)
from training.policy.services import policy_battle_create, policy_openrlhf_export, policy_run_create
from training.rewardmodels.services import run_cancel


def _run_or_404(user, run_id: int) -> TrainingRun:
    run = policy_run_list(projects=visible_projects(user)).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such policy run.")
    return run


def _picked(form, name: str, allowed):
    """The object a form's select names, or None when left empty; a ValueError (shown as a form error) when
    the value is not an id of ``allowed`` (which applies the access rule: for snapshots, ``snapshot_list``)."""
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    picked = allowed.filter(pk=int(raw)).first() if raw.isdigit() else None
    if picked is None:
        raise ValueError(f"{name}: no such {name} ({raw[:20]!r})")
    return picked


def policy_charts(series: dict) -> dict[str, str]:
    """Server-rendered SVG line charts, one per metric group that has data."""
    charts = {}
    for key, (title, names) in CHART_GROUPS.items():
        picked = {n: series[n] for n in names if n in series}
        if picked:
            charts[key] = run_charts.line_chart_svg(picked, title)
    return charts


@login_required
def policy_list_page(request):
    require_engineer(request.user, what="Policy runs")
    projects = visible_projects(request.user)
    runs = list(policy_run_list(projects=projects, kind=request.GET.get("kind"))[:200])
    snapshots = snapshot_list(user=request.user).filter(status=JobStatus.SUCCEEDED)[:100]
    example = {
        "algorithm": {"steps": 20, "batch_size": 16, "max_new_tokens": 32},
        "reward": {"type": "active"},
        "prompts": {"source": "project", "max_prompts": 256},
        "battle": {"held_out": 8},
    }
    return render(
        request,
        "training/policy/list.html",
        {
            "runs": runs,
            "projects": projects,
            "snapshots": snapshots,
            "kinds": [(k.value, k.label) for k in POLICY_KINDS],
            "example_config": json.dumps(example, indent=2),
        },
    )


@login_required
@require_POST
def policy_create_page(request):
    require_engineer(request.user, what="Policy runs")
    projects = visible_projects(request.user)
    try:
        project = _picked(request.POST, "project", projects)
        snapshot = _picked(request.POST, "snapshot", snapshot_list(user=request.user))
        config = json.loads(request.POST.get("config") or "{}")
        if not isinstance(config, dict):
            raise ValueError("the config must be a JSON object")
        run = policy_run_create(
            kind=request.POST.get("kind", RunKind.PPO),
            base_model=request.POST.get("base_model", "").strip(),
            config=config,
            project=project,
            snapshot=snapshot,
            seed=int(request.POST.get("seed") or 42),
            user=request.user,
        )
    except (ValidationError, ValueError, RecursionError) as exc:  # RecursionError: config JSON too deep
        messages.error(request, f"Could not start the run: {exc}")
        return redirect("training:policy_list")
    messages.success(request, f"{run.get_kind_display()} run {run.pk} queued on the training queue.")
    return redirect("training:policy_detail", run_id=run.pk)


@login_required
@require_POST
def policy_battle_create_page(request):
    """Start a battle among finished policy runs: ``run_ids`` (comma- or space-separated) and an optional
    config JSON; errors come back as a message on the list page."""
    require_engineer(request.user, what="Policy runs")
    try:
        raw = (request.POST.get("run_ids") or "").replace(",", " ").split()
        if not all(part.isdigit() for part in raw):
            raise ValueError("run_ids: whole numbers separated by commas")
        config = json.loads(request.POST.get("config") or "{}")
        if not isinstance(config, dict):
            raise ValueError("the config must be a JSON object")
        run = policy_battle_create(run_ids=[int(p) for p in raw], config=config, user=request.user)
    except (ValidationError, ValueError, RecursionError) as exc:
        messages.error(request, f"Could not start the battle: {exc}")
        return redirect("training:policy_list")
    messages.success(request, f"Battle run {run.pk} queued on the training queue.")
    return redirect("training:policy_detail", run_id=run.pk)


@login_required
def policy_detail_page(request, run_id: int):
    require_engineer(request.user, what="Policy runs")
    run = _run_or_404(request.user, run_id)
    state = policy_run_state(run)
    return render(
        request,
        "training/policy/detail.html",
        {
            "run": run,
            "state": state,
            "charts": policy_charts(state["series"]),
            "verdict": battle_verdict(run),
            "capability": capability_table(run),
            "live": run.status in (JobStatus.QUEUED, JobStatus.RUNNING),
            "config_json": json.dumps(run.config, indent=2),
            "reward_server_url": DEFAULT_REWARD_SERVER_URL,
            "policy_version": policy_version_of_run(run),
            "registrable": run.kind in POLICY_VERSION_KINDS and run.status == JobStatus.SUCCEEDED,
            "spot_checks": spot_check_counts(run) if run.kind in POLICY_VERSION_KINDS else None,
        },
    )


@login_required
def policy_live_json(request, run_id: int):
    """What the run page polls: state, warnings, latest samples and freshly rendered charts."""
    require_engineer(request.user, what="Policy runs")
    state = policy_run_state(_run_or_404(request.user, run_id))
    state["charts"] = policy_charts(state.pop("series"))
    return JsonResponse(state)


@login_required
@require_POST
def policy_cancel_page(request, run_id: int):
    require_engineer(request.user, what="Policy runs")
    run = run_cancel(run=_run_or_404(request.user, run_id))
    messages.info(request, f"Cancel requested for run {run.pk} ({run.status}).")
    return redirect("training:policy_detail", run_id=run.pk)


@login_required
@require_POST
def policy_openrlhf_page(request, run_id: int):
    require_engineer(request.user, what="Policy runs")
    run = _run_or_404(request.user, run_id)
    try:
        cluster = OpenRLHFCluster(
            nodes=int(request.POST.get("nodes") or 1),
            gpus_per_node=int(request.POST.get("gpus_per_node") or 8),
        )
        export = policy_openrlhf_export(
            run=run,
            reward_server_url=request.POST.get("reward_server_url") or DEFAULT_REWARD_SERVER_URL,
            cluster=cluster,
        )
    except (ValidationError, ValueError) as exc:
        messages.error(request, f"Could not export: {exc}")
        return redirect("training:policy_detail", run_id=run.pk)
    return render(request, "training/policy/openrlhf.html", {"run": run, "export": export})
