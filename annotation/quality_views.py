"""Quality pages: project quality (agreement, annotators, flags), annotator detail and the model leaderboard.

For reviewers, engineers and admins of the project. Thin: each view reads through
``annotation.selectors.quality``, draws with ``annotation.quality.charts`` and renders; the two POST views call
one service each.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.auth import visible_projects
from annotation.models import AnnotatorFlag, FlagStatus, Project
from annotation.quality import charts
from annotation.selectors.quality import (
    annotator_detail,
    annotator_table,
    flag_list,
    model_leaderboard,
    project_agreement,
    quality_settings,
)
from annotation.services.quality import can_review_quality, flag_clear, flag_create, flags_refresh


def _project(request: HttpRequest, project_id: int) -> Project:
    project = get_object_or_404(visible_projects(request.user), pk=project_id)
    if not can_review_quality(request.user, project):
        raise PermissionDenied("Quality pages are for reviewers, engineers and admins of the project.")
    return project


@login_required
def project_quality(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    agreement = project_agreement(project)
    table = annotator_table(project)
    return render(
        request,
        "annotation/quality/project.html",
        {
            "project": project,
            "agreement": agreement,
            "annotators": sorted(table["annotators"], key=lambda r: (not r["quarantined"], r["username"])),
            "project_median_time_ms": table["project_median_time_ms"],
            "open_flags": flag_list(project=project, status=FlagStatus.OPEN),
            "settings": quality_settings(project).as_dict(),
            "agreement_chart": charts.agreement_chart(agreement["project"]),
            "annotator_chart": charts.annotator_scatter(table["annotators"]),
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
            "charts": charts.annotator_detail_charts(detail, settings.fast_ms),
        },
    )


@login_required
def leaderboard(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    board = model_leaderboard(project)
    rows = [
        {"model": m, "cells": zip(board["win_rate"][k], board["pair_games"][k], strict=True)}
        for k, m in enumerate(board["order"])
    ]
    return render(
        request,
        "annotation/quality/leaderboard.html",
        {
            "project": project,
            "board": board,
            "matrix_rows": rows,
            "rating_chart": charts.leaderboard_chart(board["models"]),
            "heatmap": charts.win_rate_heatmap(board["order"], board["win_rate"]),
        },
    )


@login_required
@require_POST
def flags_refresh_view(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    created = flags_refresh(project=project)
    messages.info(request, f"Quality checks ran: {len(created)} new flag(s).")
    return redirect("annotation:quality-project", project_id=project.pk)


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


def _next_url(request: HttpRequest, project: Project) -> str:
    target = request.POST.get("next", "")
    allowed = reverse("annotation:quality-project", args=[project.pk])
    # Only our own quality pages, never an arbitrary (open redirect) URL.
    if target.startswith(allowed):
        return target
    return allowed
