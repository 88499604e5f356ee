"""Quality pages: project quality (agreement, annotators, flags), annotator detail and the model leaderboard.

For reviewers, engineers and admins of the project. Thin: each view reads through
``annotation.selectors.quality`` (the project-wide numbers come from the stored quality report, with its age;
a page never computes over the whole project), draws with ``annotation.quality.charts`` and renders; the POST
views call one service each.
"""

from __future__ import annotations

import hashlib
import json

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.auth import visible_projects
from annotation.models import AnnotatorFlag, FlagStatus, Project
from annotation.quality import charts
from annotation.selectors.quality import (
    annotator_detail,
    flag_list,
    quality_settings,
    report_annotator_rows,
)
from annotation.services.quality import can_review_quality, flag_clear, flag_create
from annotation.services.quality_report import quality_report_for_page, quality_report_request

ANNOTATORS_PER_PAGE = 100
MIN_UNITS_FOR_INTERVAL = 30
"""Agreement over fewer tasks with two or more votes is shown as that number of tasks, without an estimate
or interval: on a handful of tasks kappa swings to -1 or 1 and its bootstrap interval collapses to a point."""


def _project(request: HttpRequest, project_id: int) -> Project:
    project = get_object_or_404(visible_projects(request.user), pk=project_id)
    if not can_review_quality(request.user, project):
        raise PermissionDenied("Quality pages are for reviewers, engineers and admins of the project.")
    return project


@login_required
def project_quality(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    report = quality_report_for_page(project, sections=("agreement", "annotator_table", "charts"))
    payload = report.payload if report else {}
    agreement = payload.get("agreement")
    annotators = report_annotator_rows(report, project) if report else []
    annotators.sort(key=lambda r: (not r["quarantined"], r["username"]))
    page = Paginator(annotators, ANNOTATORS_PER_PAGE).get_page(request.GET.get("annotators_page"))
    return render(
        request,
        "annotation/quality/project.html",
        {
            "project": project,
            "report": report,
            "agreement": agreement,
            "annotators": page.object_list,
            "annotators_page": page,
            "project_median_time_ms": payload.get("annotator_table", {}).get("project_median_time_ms"),
            "open_flags": flag_list(project=project, status=FlagStatus.OPEN),
            "settings": quality_settings(project).as_dict(),
            "agreement_chart": payload.get("charts", {}).get("agreement"),
            "annotator_chart": payload.get("charts", {}).get("annotators"),
            "min_units": MIN_UNITS_FOR_INTERVAL,
            "pairs_shown": _weakest_pairs(agreement["project"]["cohen_kappa_pairs"]) if agreement else [],
        },
    )


@login_required
def annotator_quality(request: HttpRequest, project_id: int, annotator_id: int) -> HttpResponse:
    project = _project(request, project_id)
    detail = annotator_detail(project, annotator_id)
    if detail is None:
        raise Http404("This annotator has no judgments in the project.")
    settings = quality_settings(project)
    return render(
        request,
        "annotation/quality/annotator.html",
        {
            "project": project,
            "detail": detail,
            "stats": detail["stats"],
            "flags": flag_list(project=project, annotator_id=annotator_id),
            "charts": _detail_charts(detail, settings.fast_ms),
        },
    )


@login_required
def leaderboard(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    report = quality_report_for_page(project, sections=("leaderboard", "charts"))
    empty = {"n_comparisons": 0, "models": [], "order": [], "win_rate": [], "pair_games": []}
    board = report.payload.get("leaderboard", empty) if report else empty
    rows = [
        {"model": m, "cells": zip(board["win_rate"][k], board["pair_games"][k], strict=True)}
        for k, m in enumerate(board["order"])
    ]
    return render(
        request,
        "annotation/quality/leaderboard.html",
        {
            "project": project,
            "report": report,
            "board": board,
            "matrix_rows": rows,
            "rating_chart": report.payload.get("charts", {}).get("leaderboard_ratings") if report else None,
            "heatmap": report.payload.get("charts", {}).get("leaderboard_win_rates") if report else None,
        },
    )


@login_required
@require_POST
def report_recompute_view(request: HttpRequest, project_id: int) -> HttpResponse:
    """ "Recompute now": queue the quality job (statistics and flag rules) for this project."""
    project = _project(request, project_id)
    if quality_report_request(project=project, user=request.user):
        messages.info(request, "Recomputing the quality statistics and flags in the background.")
    else:
        messages.info(request, "A recompute is already on its way.")
    return redirect(_next_url(request, project))


@login_required
@require_POST
def flag_clear_view(request: HttpRequest, project_id: int, flag_id: int) -> HttpResponse:
    project = _project(request, project_id)
    flag = get_object_or_404(AnnotatorFlag, pk=flag_id, project=project)
    try:
        flag_clear(flag=flag, reviewer=request.user, note=request.POST.get("note", "").strip())
        messages.success(request, f"Flag '{flag.reason}' cleared for {flag.annotator.username}.")
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    return redirect(_next_url(request, project))


@login_required
@require_POST
def flag_create_view(request: HttpRequest, project_id: int, annotator_id: int) -> HttpResponse:
    project = _project(request, project_id)
    annotator = get_object_or_404(get_user_model(), pk=annotator_id, memberships__project=project)
    flag_create(
        project=project,
        annotator=annotator,
        reason="manual",
        reviewer=request.user,
        note=request.POST.get("note", "").strip(),
    )
    messages.success(request, f"{annotator.username} is quarantined until a reviewer clears the flag.")
    return redirect("annotation:quality-annotator", project_id=project.pk, annotator_id=annotator.pk)


def _detail_charts(detail: dict, fast_ms: int) -> dict:
    """The annotator page's charts, drawn once per distinct input (matplotlib takes a good part of a second
    for three SVGs on a busy machine; the inputs change only when this annotator works or the report moves)."""
    inputs = [
        detail["stats"]["daily_volume"],
        detail["times_ms"],
        detail["drift"],
        detail["project_median_time_ms"],
    ]
    digest = hashlib.sha256(json.dumps([inputs, fast_ms], sort_keys=True, default=str).encode()).hexdigest()
    return cache.get_or_set(
        f"quality:annotator-charts:{digest}", lambda: charts.annotator_detail_charts(detail, fast_ms), 3600
    )


def _weakest_pairs(pairs: list[dict], limit: int = 50) -> list[dict]:
    """The annotator pairs with the lowest kappa (a big project has thousands; the API lists them all)."""
    return sorted(pairs, key=lambda p: (p["value"] is None, p["value"] if p["value"] is not None else 0))[
        :limit
    ]


def _next_url(request: HttpRequest, project: Project) -> str:
    target = request.POST.get("next", "")
    allowed = reverse("annotation:quality-project", args=[project.pk])
    # Only our own quality pages, never an arbitrary (open redirect) URL.
    if target.startswith(allowed):
        return target
    return allowed
