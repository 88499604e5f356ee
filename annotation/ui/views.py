"""Annotator, reviewer and dashboard pages. Thin: parse, call one service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotation.auth import visible_projects
from annotation.models import ComparisonTask, Project, TaskStatus
from annotation.selectors.assignment import (
    annotator_progress,
    last_undoable_judgment,
    lease_for,
    review_queue,
    task_for_display,
)
from annotation.selectors.dashboard import annotator_dashboard
from annotation.selectors.progress import progress_bars
from annotation.selectors.projects import reviewer_projects
from annotation.services.assignment import task_next_for_annotator
from annotation.services.judgments import adjudication_create, judgment_submit, judgment_undo, task_skip
from annotation.ui.forms import AdjudicationForm, JudgmentForm, SkipForm
from annotation.ui.markdown import prompt_turns

FEEDBACK_KEY = "preflab_gold_feedback"


def _project(request: HttpRequest, project_id: int) -> Project:
    return get_object_or_404(visible_projects(request.user), pk=project_id)


def _task_in(project: Project, task_id: int) -> ComparisonTask:
    return get_object_or_404(ComparisonTask, pk=task_id, project=project)


def _render_annotate(request, project: Project, task: ComparisonTask | None, form=None, status=200):
    undoable = last_undoable_judgment(project=project, annotator=request.user)
    progress = annotator_progress(project=project, annotator=request.user)
    context = {
        "project": project,
        "task": task,
        "turns": prompt_turns(task.prompt.text, task.prompt.messages) if task else [],
        "form": form or (JudgmentForm(project=project) if task else None),
        "skip_form": SkipForm(),
        "progress": progress,
        "bars": progress_bars(project=project, user=request.user, done_today=progress["done_today"]),
        "undoable": undoable,
        "lease": lease_for(task=task, annotator=request.user) if task else None,
        "gold_feedback": request.session.pop(FEEDBACK_KEY, None),
        "is_reviewer": reviewer_projects(request.user).filter(pk=project.pk).exists(),
    }
    return render(request, "annotation/annotate.html", context, status=status)


@login_required
def annotate(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    task = task_next_for_annotator(project=project, annotator=request.user)
    return _render_annotate(request, project, task_for_display(task_id=task.pk) if task else None)


@login_required
@require_POST
def annotate_submit(request: HttpRequest, project_id: int, task_id: int) -> HttpResponse:
    project = _project(request, project_id)
    task = task_for_display(task_id=_task_in(project, task_id).pk)
    form = JudgmentForm(request.POST, project=project)
    if form.is_valid():
        try:
            result = judgment_submit(task=task, annotator=request.user, **form.service_kwargs())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            if result.gold_feedback:
                request.session[FEEDBACK_KEY] = result.gold_feedback
            messages.success(request, "Saved." if result.created else "Already saved.")
            return redirect("annotation:annotate", project_id=project.pk)
    return _render_annotate(request, project, task, form=form, status=400)


@login_required
@require_POST
def annotate_skip(request: HttpRequest, project_id: int, task_id: int) -> HttpResponse:
    project = _project(request, project_id)
    form = SkipForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    task_skip(task=_task_in(project, task_id), annotator=request.user, reason=reason)
    messages.info(request, "Skipped.")
    return redirect("annotation:annotate", project_id=project.pk)


@login_required
@require_POST
def annotate_undo(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    judgment = last_undoable_judgment(project=project, annotator=request.user)
    if judgment is None:
        messages.error(request, "Nothing to undo (the grace period may have passed).")
    else:
        try:
            judgment_undo(judgment=judgment, annotator=request.user)
            messages.info(request, "Undone: the task is back.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    return redirect("annotation:annotate", project_id=project.pk)


def _reviewed_project(request: HttpRequest, project_id: int) -> Project:
    """The project, for one of its reviewers (global reviewer role or reviewer membership); 403 for a user
    who reviews nothing (before the project is looked up, like the API), 404 for one they cannot see."""
    reviews = reviewer_projects(request.user)
    if not reviews.exists():
        raise PermissionDenied("Reviewers only.")
    project = _project(request, project_id)
    if not reviews.filter(pk=project.pk).exists():
        raise PermissionDenied("Reviewers only.")
    return project


@login_required
def review(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _reviewed_project(request, project_id)
    queue = review_queue(projects=Project.objects.filter(pk=project.pk))
    task = queue.first()
    return render(
        request,
        "annotation/review.html",
        {
            "project": project,
            "task": task,
            "turns": prompt_turns(task.prompt.text, task.prompt.messages) if task else [],
            "queue_size": queue.count(),
            "form": AdjudicationForm(),
        },
    )


@login_required
@require_POST
def review_adjudicate(request: HttpRequest, project_id: int, task_id: int) -> HttpResponse:
    project = _reviewed_project(request, project_id)
    task = get_object_or_404(ComparisonTask, pk=task_id, project=project, status=TaskStatus.NEEDS_REVIEW)
    form = AdjudicationForm(request.POST)
    if form.is_valid():
        try:
            adjudication_create(
                task=task,
                reviewer=request.user,
                choice=form.cleaned_data["choice"],
                strength=form.cleaned_data.get("strength") or None,
                note=form.cleaned_data.get("note", ""),
            )
            messages.success(request, f"Task {task.pk} adjudicated.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    else:
        messages.error(request, "Pick the adjudicated answer.")
    return redirect("annotation:review", project_id=project.pk)


@login_required
def my_dashboard(request: HttpRequest) -> HttpResponse:
    projects = visible_projects(request.user).order_by("name")
    stats = annotator_dashboard(annotator=request.user, projects=projects)
    return render(
        request,
        "annotation/dashboard.html",
        {
            "stats": stats,
            "projects": projects,
            "reviewable_ids": set(reviewer_projects(request.user).values_list("pk", flat=True)),
        },
    )
