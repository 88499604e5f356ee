"""Invite links: a lead makes a single-use link with a role and an expiry; opening it adds an existing or a
new account to the project. Only the sha256 of the secret is stored (as for API tokens)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.models import Project, ProjectInvite, ProjectMembership, Role
from annotation.selectors.projects import ROLE_RANK
from annotation.services.projects import membership_add

# The longest an invite may live (docs/security.md); a lead picks 1 to this many days.
INVITE_MAX_DAYS = 30


@transaction.atomic
def invite_create(
    *, project: Project, role: str, expires_in_days: int, created_by, creator_role: str
) -> tuple[ProjectInvite, str]:
    """A new invite to ``project`` with ``role`` that expires in ``expires_in_days``. ``creator_role`` is the
    creator's effective role in the project: nobody invites above their own role (as for adding members).
    Returns the invite and the raw token, which is not stored and cannot be shown again."""
    errors: dict[str, list[str]] = {}
    if role not in Role.values:
        errors["role"] = [f"Unknown role '{role}'."]
    elif ROLE_RANK[role] > ROLE_RANK.get(creator_role, -1):
        errors["role"] = ["You cannot invite with a role above your own."]
    if not 1 <= expires_in_days <= INVITE_MAX_DAYS:
        errors["expires_in_days"] = [f"Between 1 and {INVITE_MAX_DAYS} days."]
    if errors:
        raise ValidationError(errors)
    raw = ProjectInvite.generate_token()
    invite = ProjectInvite.objects.create(
        project=project,
        role=role,
        token_hash=ProjectInvite.hash_token(raw),
        created_by=created_by,
        expires_at=timezone.now() + timedelta(days=expires_in_days),
    )
    return invite, raw


def _usable(raw_token: str, *, lock: bool) -> ProjectInvite:
    qs = ProjectInvite.objects.select_related("project")
    if lock:
        qs = qs.select_for_update(of=("self",))
    invite = qs.filter(token_hash=ProjectInvite.hash_token(raw_token or "")).first()
    if invite is None or invite.revoked_at is not None:
        raise ValidationError({"token": ["This invite link is not valid."]})
    if invite.used_at is not None:
        raise ValidationError({"token": ["This invite link has already been used."]})
    if invite.expires_at <= timezone.now():
        raise ValidationError({"token": ["This invite link has expired."]})
    return invite


def invite_check(*, raw_token: str) -> ProjectInvite:
    """The invite a raw token opens, or ``ValidationError`` naming why not (unknown, used, expired)."""
    return _usable(raw_token, lock=False)


@transaction.atomic
def invite_accept(*, raw_token: str, user) -> ProjectMembership:
    """Use the invite for ``user`` (an existing, active account): add them with the invite's role, or raise
    an existing member's role to it (never lower it). The invite is used up in the same transaction."""
    invite = _usable(raw_token, lock=True)
    current = ProjectMembership.objects.filter(project=invite.project, user=user).first()
    role = invite.role
    if current is not None and ROLE_RANK.get(current.role, 0) > ROLE_RANK[role]:
        role = current.role
    membership, _ = membership_add(project=invite.project, user=user, role=role)
    invite.used_at = timezone.now()
    invite.used_by = user
    invite.save(update_fields=["used_at", "used_by"])
    return membership


@transaction.atomic
def invite_accept_new_account(*, raw_token: str, username: str, password: str, email: str = ""):
    """Create an account and accept the invite with it, in one transaction: a used, expired or unknown
    invite creates no account. Returns the new user."""
    invite_check(raw_token=raw_token)
    users = get_user_model()
    username = (username or "").strip()
    if not username:
        raise ValidationError({"username": ["This field is required."]})
    if users.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": ["This username is taken."]})
    user = users(username=username, email=email)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    invite_accept(raw_token=raw_token, user=user)
    return user


@transaction.atomic
def invite_revoke(*, invite: ProjectInvite) -> ProjectInvite:
    if invite.revoked_at is None and invite.used_at is None:
        invite.revoked_at = timezone.now()
        invite.save(update_fields=["revoked_at"])
    return invite


@transaction.atomic
def user_deactivate(*, user, by) -> None:
    """Stop an account: no login, no API token, no reward-server token (``auth.live_tokens``). Its
    judgments stay. Nobody deactivates themselves (the last admin could lock everyone out)."""
    if user.pk == by.pk:
        raise ValidationError({"user": ["You cannot deactivate your own account."]})
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
