"""Who may open a lead's pages (project settings, imports, members, task browser): the project's engineers
and admins, by ``ProjectAccess.can_manage``, the rule the API's project writes use. A project the user
cannot see is a 404; one they see but do not manage is a 403 that says why."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from annotation.auth import visible_projects
from annotation.models import Project
from annotation.selectors.projects import ProjectAccess, project_access_for_user

LEAD_ONLY = (
    "Project settings, imports, members and the task browser are for the project's engineers and admins."
)


def request_access(request: HttpRequest) -> ProjectAccess:
    cached = getattr(request, "_preflab_access", None)
    if cached is None:
        cached = project_access_for_user(request.user)
        request._preflab_access = cached
    return cached


def managed_project(request: HttpRequest, project_id: int) -> Project:
    project = get_object_or_404(visible_projects(request.user), pk=project_id)
    if not request_access(request).can_manage(project.pk):
        raise PermissionDenied(LEAD_ONLY)
    return project
