"""A lead's project pages: create a project, edit its settings and guidelines (with a Markdown preview
rendered by the same sanitising pipeline the annotate page uses)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.auth import has_role
from annotation.models import Role
from annotation.selectors.projects import ROLE_RANK
from annotation.services.projects import project_create, project_update
from annotation.ui.lead import managed_project, request_access
from annotation.ui.markdown import render_markdown
from annotation.ui.setup_forms import ProjectForm

# The preview renders at most this much text (the guidelines field has no other cap on the page).
PREVIEW_MAX_CHARS = 200_000


def _require_creator(request: HttpRequest) -> None:
    if not has_role(request.user, Role.ENGINEER):
        raise PermissionDenied("Creating projects is for ML engineers and admins (as in the API).")


@login_required
def project_new(request: HttpRequest) -> HttpResponse:
    _require_creator(request)
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.service_kwargs()
        try:
            project = project_create(created_by=request.user, **data)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Project “{project.name}” created. Next: import items.")
            return redirect("annotation:import", project_id=project.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "annotation/setup/project_form.html", {"form": form, "project": None}, status=status
    )


@login_required
def project_edit(request: HttpRequest, project_id: int) -> HttpResponse:
    project = managed_project(request, project_id)
    form = ProjectForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        changes = {
            name: value for name, value in form.service_kwargs().items() if getattr(project, name) != value
        }
        try:
            project_update(project=project, **changes)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Settings saved." if changes else "Nothing changed.")
            return redirect("annotation:project-edit", project_id=project.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "annotation/setup/project_form.html", {"form": form, "project": project}, status=status
    )


@login_required
@require_POST
def markdown_preview(request: HttpRequest) -> JsonResponse:
    """Guidelines as the annotators will see them: ``{"html": ...}``, sanitised server-side."""
    # Whoever may write guidelines: those who may create a project, and the engineers and admins of one.
    if (
        not has_role(request.user, Role.ENGINEER)
        and request_access(request).rank() < ROLE_RANK[Role.ENGINEER]
    ):
        raise PermissionDenied("The preview is for project leads (engineers and admins of a project).")
    text = request.POST.get("text", "")
    if len(text) > PREVIEW_MAX_CHARS:
        return JsonResponse({"error": f"Longer than {PREVIEW_MAX_CHARS} characters."}, status=400)
    return JsonResponse({"html": str(render_markdown(text))})
