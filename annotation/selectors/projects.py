"""Reads of projects and their content, always restricted to what a user may see.

A user's role *in a project* is the higher of their global role (Django group) and their membership role;
admins (superusers or the ``admin`` group) act as admin in every project without a membership. Every list
here starts from :func:`annotation.auth.visible_projects`, so a project a user cannot see never appears
(the API turns that into a 404, not a 403).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q, QuerySet

from annotation.auth import is_admin, user_roles, visible_projects
from annotation.models import (
    ApiToken,
    Candidate,
    ComparisonTask,
    Judgment,
    Project,
    ProjectMembership,
    Prompt,
    Role,
)

ROLE_RANK: dict[str, int] = {Role.ANNOTATOR: 0, Role.REVIEWER: 1, Role.ENGINEER: 2, Role.ADMIN: 3}


@dataclass(frozen=True)
class ProjectAccess:
    """What one user may do in each project, computed once per request."""

    admin: bool
    roles: dict[int, str] = field(default_factory=dict)
    """Project id -> effective role, for the projects the user is a member of."""

    def role(self, project_id: int) -> str | None:
        if self.admin:
            return Role.ADMIN
        return self.roles.get(project_id)

    def _rank(self, project_id: int) -> int:
        role = self.role(project_id)
        return -1 if role is None else ROLE_RANK[role]

    def can_see(self, project_id: int) -> bool:
        return self._rank(project_id) >= 0

    def can_review(self, project_id: int) -> bool:
        """Reviewers, engineers and admins: every judgment of the project, model names, gold answers."""
        return self._rank(project_id) >= ROLE_RANK[Role.REVIEWER]

    def can_manage(self, project_id: int) -> bool:
        """Engineers and admins: project settings, members, prompts, candidates and tasks."""
        return self._rank(project_id) >= ROLE_RANK[Role.ENGINEER]

    def rank(self) -> int:
        """The highest rank this user holds anywhere (used to cap the roles they may grant)."""
        if self.admin:
            return ROLE_RANK[Role.ADMIN]
        return max((ROLE_RANK[r] for r in self.roles.values()), default=-1)


def project_access_for_user(user) -> ProjectAccess:
    if not user or not user.is_authenticated:
        return ProjectAccess(admin=False)
    if is_admin(user):
        return ProjectAccess(admin=True)
    global_rank = max((ROLE_RANK[r] for r in user_roles(user)), default=-1)
    roles: dict[int, str] = {}
    rank_to_role = {rank: role for role, rank in ROLE_RANK.items()}
    for project_id, role in ProjectMembership.objects.filter(user=user).values_list("project_id", "role"):
        roles[project_id] = rank_to_role[max(global_rank, ROLE_RANK.get(role, 0))]
    return ProjectAccess(admin=False, roles=roles)


def reviewer_projects(user) -> QuerySet[Project]:
    """Projects whose review queue ``user`` works: every project for admins; the projects they are a member
    of for holders of the global reviewer role; else the projects where their membership role is reviewer
    (or admin). Engineers are not adjudicators unless they hold a reviewer role as well."""
    if not user or not user.is_authenticated:
        return Project.objects.none()
    if is_admin(user):
        return Project.objects.all()
    if Role.REVIEWER in user_roles(user):
        return visible_projects(user)
    return Project.objects.filter(
        memberships__user=user, memberships__role__in=[Role.REVIEWER, Role.ADMIN]
    ).distinct()


TASK_COUNT_CAP = 10_000
"""Task counts on list pages stop here ("10,000+"): an exact count of a 400k-task project reads every index
entry on every page view."""


def _capped_count(qs) -> str:
    n = qs.values("pk")[: TASK_COUNT_CAP + 1].count()
    return f"{TASK_COUNT_CAP:,}+" if n > TASK_COUNT_CAP else f"{n:,}"


def project_task_counts(*, project_ids: list[int]) -> dict[int, tuple[str, str]]:
    """(total, open) tasks per project, as display strings, each counted up to ``TASK_COUNT_CAP`` through
    the task indexes (project; project and status)."""
    return {
        pid: (
            _capped_count(ComparisonTask.objects.filter(project_id=pid)),
            # Ordered as task_queue_idx is, so the scan starts at the open tasks instead of skipping past
            # every complete one (a seq scan in id order reads the whole project's history first).
            _capped_count(
                ComparisonTask.objects.filter(project_id=pid, status="open").order_by("-judgment_count", "id")
            ),
        )
        for pid in project_ids
    }


def project_list_for_user(*, user) -> QuerySet[Project]:
    return visible_projects(user).order_by("id")


def _visible_ids(user):
    return visible_projects(user).values("id")


def prompt_list_for_user(*, user) -> QuerySet[Prompt]:
    return Prompt.objects.filter(project_id__in=_visible_ids(user))


def candidate_list_for_user(*, user) -> QuerySet[Candidate]:
    return Candidate.objects.filter(prompt__project_id__in=_visible_ids(user)).select_related("prompt")


def task_list_for_user(*, user) -> QuerySet[ComparisonTask]:
    return ComparisonTask.objects.filter(project_id__in=_visible_ids(user)).select_related(
        "prompt", "candidate_a", "candidate_b"
    )


def judgment_list_for_user(*, user, access: ProjectAccess | None = None) -> QuerySet[Judgment]:
    """Every judgment of projects where the user reviews or manages; elsewhere only their own."""
    base = Judgment.objects.select_related("task", "annotator")
    if not user or not user.is_authenticated:
        return base.none()
    access = access or project_access_for_user(user)
    if access.admin:
        return base.all()
    review_ids = [pid for pid in access.roles if access.can_review(pid)]
    own_ids = list(access.roles)
    return base.filter(Q(task__project_id__in=review_ids) | Q(annotator=user, task__project_id__in=own_ids))


def membership_list(*, project: Project) -> QuerySet[ProjectMembership]:
    return ProjectMembership.objects.filter(project=project).select_related("user").order_by("id")


def api_token_list_for_user(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)
