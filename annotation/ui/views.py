"""Annotator, reviewer and dashboard pages. Thin: parse, call one service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from annotation.auth import visible_projects
from annotation.models import ComparisonTask, Judgment, Project, TaskKind, TaskLease, TaskStatus
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
from annotation.services.judgments import (
    adjudication_create,
    gold_feedback_for,
    judgment_submit,
    judgment_undo,
    task_skip,
)
from annotation.ui.forms import AdjudicationForm, JudgmentForm, SkipForm
from annotation.ui.markdown import prompt_turns, shared_word_ratio, split_final_turn

FEEDBACK_KEY = "preflab_gold_feedback"
# Tasks the annotate page may hold at once and name in ``exclude`` (current, prefetched, waiting to send).
MAX_HELD_TASKS = 50
# Below this share of common words the word diff is hidden by default (it would be all highlight).
DIFF_MIN_SHARED = 0.3


def _project(request: HttpRequest, project_id: int) -> Project:
    return get_object_or_404(visible_projects(request.user), pk=project_id)


def _task_in(project: Project, task_id: int) -> ComparisonTask:
    return get_object_or_404(ComparisonTask, pk=task_id, project=project)


def task_reading_context(task: ComparisonTask | None) -> dict:
    """What the prompt/response partials need: the transcript split at the final user turn, and whether
    the two responses share enough text for a word diff to help."""
    if task is None:
        return {"task": None, "turns": [], "earlier_turns": [], "final_turns": []}
    turns = prompt_turns(task.prompt.text, task.prompt.messages)
    earlier, final = split_final_turn(turns)
    shared = shared_word_ratio(task.candidate_a.text, task.candidate_b.text)
    return {
        "task": task,
        "turns": turns,
        "earlier_turns": earlier,
        "final_turns": final,
        "earlier_chars": sum(len(t["content"]) for t in earlier),
        "shared_ratio": shared,
        "diff_useful": shared >= DIFF_MIN_SHARED,
    }


def _undoable_payload(judgment: Judgment | None, project: Project) -> dict | None:
    if judgment is None:
        return None
    return {
        "judgment": judgment.pk,
        "task": judgment.task_id,
        "choice": judgment.choice,
        "strength": judgment.strength,
        "rationale": judgment.rationale,
        "criteria": judgment.criteria,
        "deadline_ms": int(judgment.created_at.timestamp() * 1000) + project.undo_grace_seconds * 1000,
    }


def _page_config(request, project: Project, undoable: Judgment | None) -> dict:
    """Settings annotate.js needs (URLs with a 0 placeholder for the task or judgment id)."""
    return {
        "user": request.user.pk,
        "project": project.pk,
        "next_url": reverse("annotation:annotate-next", args=[project.pk]),
        "feedback_url": reverse("annotation:annotate-feedback", args=[project.pk, 0]),
        "submit_url": reverse("api-task-submit", args=[0]),
        "skip_url": reverse("api-task-skip", args=[0]),
        "undo_url": reverse("api-judgment-undo", args=[0]),
        "form_submit_url": reverse("annotation:annotate-submit", args=[project.pk, 0]),
        "form_skip_url": reverse("annotation:annotate-skip", args=[project.pk, 0]),
        "ask_strength": project.ask_strength,
        "rationale_required": project.rationale_required,
        "undo_grace_seconds": project.undo_grace_seconds,
        "undoable": _undoable_payload(undoable, project),
        "max_held": MAX_HELD_TASKS,
    }


def _render_annotate(request, project: Project, task: ComparisonTask | None, form=None, status=200):
    undoable = last_undoable_judgment(project=project, annotator=request.user)
    progress = annotator_progress(project=project, annotator=request.user)
    context = {
        **task_reading_context(task),
        "project": project,
        "page_config": _page_config(request, project, undoable),
        "form": form or JudgmentForm(project=project),
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


def _held_ids(raw: str) -> list[int]:
    ids = [int(x) for x in raw.split(",") if x.strip().isdigit()][:MAX_HELD_TASKS]
    return ids


@login_required
@require_POST
def annotate_next(request: HttpRequest, project_id: int) -> JsonResponse:
    """The annotate page's prefetch: lease the next task after the ones the page holds (``exclude``, comma
    separated ids, at most ``MAX_HELD_TASKS``) and return it rendered, as the page would show it. With
    ``task``: that task again, if the annotator holds a live lease on it (a task just given back by undo)."""
    project = _project(request, project_id)
    wanted = request.POST.get("task", "")
    if wanted.isdigit():
        live = TaskLease.objects.filter(
            task_id=int(wanted), task__project=project, annotator=request.user, expires_at__gt=timezone.now()
        )
        if not live.exists():
            raise Http404("You hold no lease on this task.")
        task = _task_in(project, int(wanted))
    else:
        exclude = _held_ids(request.POST.get("exclude", ""))
        task = task_next_for_annotator(project=project, annotator=request.user, exclude=exclude)
    payload = None
    if task is not None:
        context = {**task_reading_context(task_for_display(task_id=task.pk)), "project": project}
        payload = {"id": task.pk, "html": render_to_string("annotation/_task.html", context, request)}
    return JsonResponse(
        {"task": payload, "progress": annotator_progress(project=project, annotator=request.user)}
    )


@login_required
@require_GET
def annotate_feedback(request: HttpRequest, project_id: int, judgment_id: int) -> HttpResponse:
    """Gold feedback for one of my judgments, rendered (the page asks after the submit API says there is
    some); 404 where the project shows none, so this never reveals which tasks are gold."""
    project = _project(request, project_id)
    judgment = get_object_or_404(
        Judgment.objects.select_related("task"),
        pk=judgment_id,
        annotator=request.user,
        task__project=project,
        task__kind=TaskKind.GOLD,
    )
    feedback = gold_feedback_for(judgment.task, judgment)
    if feedback is None:
        raise Http404("No feedback in this project.")
    return render(request, "annotation/_gold_feedback.html", {"gold_feedback": feedback})


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
            **task_reading_context(task),
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
