"""Members of a project: invite by link, change roles, remove from the project, and (admins) deactivate an
account; and the page an invite link opens, which joins a logged-in account or creates a new one."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from annotation.auth import is_admin
from annotation.models import ProjectInvite
from annotation.selectors.projects import ROLE_RANK, membership_list
from annotation.services.invites import (
    invite_accept,
    invite_accept_new_account,
    invite_check,
    invite_create,
    invite_revoke,
    user_deactivate,
)
from annotation.services.projects import membership_add, membership_remove
from annotation.ui.lead import managed_project, request_access
from annotation.ui.setup_forms import InviteForm, MemberRoleForm

NEW_LINK_KEY = "preflab_new_invite_link"


def _service_errors(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


@login_required
def members_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = managed_project(request, project_id)
    own_rank = ROLE_RANK[request_access(request).role(project.pk)]
    pending = ProjectInvite.objects.filter(
        project=project, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    )
    return render(
        request,
        "annotation/setup/members.html",
        {
            "project": project,
            "members": membership_list(project=project),
            "invite_form": InviteForm(),
            "role_choices": [
                (r, label) for r, label in InviteForm.base_fields["role"].choices if ROLE_RANK[r] <= own_rank
            ],
            "pending": pending,
            "new_link": request.session.pop(NEW_LINK_KEY, None),
            "can_deactivate": is_admin(request.user),
        },
    )


@login_required
@require_POST
def invite_new(request: HttpRequest, project_id: int) -> HttpResponse:
    project = managed_project(request, project_id)
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a role and an expiry of 1 to 30 days.")
        return redirect("annotation:members", project_id=project.pk)
    try:
        invite, raw = invite_create(
            project=project,
            role=form.cleaned_data["role"],
            expires_in_days=form.cleaned_data["expires_in_days"],
            created_by=request.user,
            creator_role=request_access(request).role(project.pk),
        )
    except ValidationError as exc:
        _service_errors(request, exc)
    else:
        # Shown once, on the next page load; only its hash is stored.
        request.session[NEW_LINK_KEY] = {
            "url": request.build_absolute_uri(reverse("annotation:invite-accept", args=[raw])),
            "role": invite.get_role_display(),
            "expires_at": invite.expires_at.isoformat(),
        }
    return redirect("annotation:members", project_id=project.pk)


@login_required
@require_POST
def invite_revoke_page(request: HttpRequest, project_id: int, invite_id: int) -> HttpResponse:
    project = managed_project(request, project_id)
    invite_revoke(invite=get_object_or_404(ProjectInvite, pk=invite_id, project=project))
    messages.info(request, "Invite revoked.")
    return redirect("annotation:members", project_id=project.pk)


@login_required
@require_POST
def member_change(request: HttpRequest, project_id: int, user_id: int) -> HttpResponse:
    """Change a member's role (``action=role``), remove them from the project (``remove``) or, for admins,
    deactivate their account (``deactivate``)."""
    project = managed_project(request, project_id)
    membership = get_object_or_404(membership_list(project=project), user_id=user_id)
    user = membership.user
    action = request.POST.get("action", "role")
    own_role = request_access(request).role(project.pk)
    try:
        if action == "role":
            form = MemberRoleForm(request.POST)
            if not form.is_valid():
                raise ValidationError({"role": ["Pick a role."]})
            role = form.cleaned_data["role"]
            if max(ROLE_RANK[role], ROLE_RANK.get(membership.role, 0)) > ROLE_RANK[own_role]:
                raise PermissionDenied("You cannot grant or change a role above your own.")
            membership_add(project=project, user=user, role=role)
            messages.success(request, f"{user.username} is now {role}.")
        elif action == "remove":
            if ROLE_RANK.get(membership.role, 0) > ROLE_RANK[own_role]:
                raise PermissionDenied("You cannot remove a member whose role is above your own.")
            membership_remove(project=project, user=user)
            messages.info(request, f"{user.username} removed from the project; their judgments stay.")
        elif action == "deactivate":
            if not is_admin(request.user):
                raise PermissionDenied("Deactivating an account is for admins.")
            user_deactivate(user=user, by=request.user)
            messages.info(request, f"{user.username}'s account is deactivated (no login, no API tokens).")
        else:
            raise ValidationError({"action": ["Unknown action."]})
    except ValidationError as exc:
        _service_errors(request, exc)
    return redirect("annotation:members", project_id=project.pk)


def invite_accept_page(request: HttpRequest, token: str) -> HttpResponse:
    """Open to anyone with the link. Logged in: join with this account. Not logged in: create an account
    (or log in first and come back). A used, expired or unknown link says so and changes nothing."""
    try:
        invite = invite_check(raw_token=token)
    except ValidationError as exc:
        return render(request, "annotation/setup/invite.html", {"error": " ".join(exc.messages)}, status=404)
    errors: list[str] = []
    if request.method == "POST":
        try:
            if request.user.is_authenticated:
                invite_accept(raw_token=token, user=request.user)
            else:
                if request.POST.get("password") != request.POST.get("password2"):
                    raise ValidationError({"password2": ["The two passwords differ."]})
                user = invite_accept_new_account(
                    raw_token=token,
                    username=request.POST.get("username", ""),
                    password=request.POST.get("password", ""),
                    email=request.POST.get("email", ""),
                )
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        except ValidationError as exc:
            errors = exc.messages
        else:
            messages.success(request, f"Welcome to {invite.project.name}.")
            return redirect("home")
    return render(
        request,
        "annotation/setup/invite.html",
        {
            "invite": invite,
            "errors": errors,
            "username": request.POST.get("username", "") if request.method == "POST" else "",
            "login_url": f"{reverse('login')}?next={request.path}",
        },
        status=400 if errors else 200,
    )
