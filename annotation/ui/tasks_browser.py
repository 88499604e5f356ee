"""The task browser: search and filter a project's tasks, page through them by cursor, and act on a
selection (mark gold with its answer, reopen, send to review)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from annotation.models import Choice
from annotation.selectors.task_browser import TaskFilters, task_annotators, task_browser_page
from annotation.services.task_bulk import tasks_mark_gold, tasks_reopen, tasks_send_to_review
from annotation.ui.lead import managed_project
from annotation.ui.setup_forms import BulkActionForm, TaskFilterForm


@login_required
def task_browser(request: HttpRequest, project_id: int) -> HttpResponse:
    project = managed_project(request, project_id)
    annotators = list(task_annotators(project=project))
    form = TaskFilterForm(request.GET or None, annotators=annotators)
    filters, before = TaskFilters(), None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = TaskFilters(
            q=data["q"].strip(),
            status=data["status"],
            disagreement=data["disagreement"],
            gold=data["gold"],
            annotator_id=data["annotator"],
            judged_from=data["judged_from"],
            judged_to=data["judged_to"],
        )
        before = data["before"]
    page = task_browser_page(project=project, filters=filters, before=before)
    query = {k: v for k, v in request.GET.items() if k != "before" and v}
    next_url = None
    if page.next_cursor is not None:
        next_url = "?" + urlencode({**query, "before": page.next_cursor})
    return render(
        request,
        "annotation/setup/tasks.html",
        {
            "project": project,
            "form": form,
            "page": page,
            "next_url": next_url,
            "first_url": "?" + urlencode(query) if before else None,
            "here": request.get_full_path(),
            "choices": Choice.choices,
        },
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


@login_required
@require_POST
def task_bulk_action(request: HttpRequest, project_id: int) -> HttpResponse:
    project = managed_project(request, project_id)
    form = BulkActionForm(request.POST)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}) or not back.startswith(
        "/"
    ):
        back = reverse("annotation:tasks", args=[project.pk])
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(back)
    data = form.cleaned_data
    ids = data["tasks"]
    try:
        if data["action"] == "gold":
            n = tasks_mark_gold(project=project, task_ids=ids, gold_choice=data["gold_choice"])
            messages.success(request, f"{n} task(s) marked gold with answer {data['gold_choice']}.")
        elif data["action"] == "reopen":
            n = tasks_reopen(project=project, task_ids=ids)
            messages.success(request, f"{n} task(s) reopened for fresh answers.")
        else:
            n = tasks_send_to_review(project=project, task_ids=ids)
            skipped = len(ids) - n
            note = f" ({skipped} left out: not judged yet, adjudicated, or already there)" if skipped else ""
            messages.success(request, f"{n} task(s) sent to the review queue{note}.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect(back)
