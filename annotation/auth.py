"""API token authentication and scope/role permissions shared by every PrefLab API.

Clients send ``Authorization: Bearer <token>`` (or ``Token <token>``). A token carries scopes
(annotate, export, train, score); a view names the scopes it needs in ``read_scopes``/``write_scopes``
(``TokenScopes``). Session-authenticated web users are not limited by scopes (their role still applies).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from annotation.models import ApiToken, Project, Role, TokenScope


def live_tokens() -> QuerySet[ApiToken]:
    """Tokens that authenticate now: not revoked, not expired, and their user is active."""
    return ApiToken.objects.select_related("user", "budget_root").filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()),
        revoked_at__isnull=True,
        user__is_active=True,
    )


def token_lookup(raw_key: str) -> ApiToken | None:
    """The live token for a raw key, or None (unknown, revoked, expired or inactive user)."""
    if not raw_key:
        return None
    return live_tokens().filter(key_hash=ApiToken.hash_key(raw_key)).first()


class TokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be '<Bearer|Token> <key>'.")
        token = token_lookup(header[1].decode("utf-8", errors="replace"))
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired token.")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return (token.user, token)

    def authenticate_header(self, request) -> str:
        return "Bearer"


def user_roles(user: AbstractBaseUser | AnonymousUser) -> set[str]:
    if not user or not user.is_authenticated:
        return set()
    roles = set(user.groups.values_list("name", flat=True)) & {r.value for r in Role}
    if user.is_superuser:
        roles.add(Role.ADMIN)
    return roles


def is_admin(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_superuser or Role.ADMIN in user_roles(user)))


def has_role(user, *roles: str) -> bool:
    """True if the user holds any of ``roles`` (admins hold every role)."""
    return is_admin(user) or bool(user_roles(user) & set(roles))


def visible_projects(user):
    """Projects a user may see: all for admins, else the ones they are a member of."""
    if is_admin(user):
        return Project.objects.all()
    if not user or not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(memberships__user=user)


READ_SCOPES: tuple[str, ...] = (TokenScope.ANNOTATE, TokenScope.EXPORT, TokenScope.TRAIN)
MANAGE_SCOPES: tuple[str, ...] = (TokenScope.TRAIN,)
ANNOTATE_SCOPES: tuple[str, ...] = (TokenScope.ANNOTATE,)
EXPORT_SCOPES: tuple[str, ...] = (TokenScope.EXPORT,)


class TokenScopes(permissions.BasePermission):
    """A token request needs one of the view's ``read_scopes`` (safe methods) or ``write_scopes``.

    A view may refine per action with ``action_scopes = {"action": (scopes...)}``. An empty tuple means
    any token will do. Session requests are not limited by scopes. The one scope gate of every DRF view
    (the reward server checks ``score`` itself, through ``ApiToken.has_scope``).
    """

    code = "missing_scope"
    message = "This token lacks the scope this endpoint needs."

    @staticmethod
    def scopes_for(request, view) -> tuple[str, ...]:
        action_scopes = getattr(view, "action_scopes", {}) or {}
        action = getattr(view, "action", None)
        if action in action_scopes:
            return tuple(action_scopes[action])
        if request.method in permissions.SAFE_METHODS:
            return tuple(getattr(view, "read_scopes", READ_SCOPES))
        return tuple(getattr(view, "write_scopes", MANAGE_SCOPES))

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        needed = self.scopes_for(request, view)
        if not needed or any(token.has_scope(s) for s in needed):
            return True
        if len(needed) == 1:
            self.message = f"This token lacks the '{needed[0]}' scope."
        else:
            self.message = "This token needs one of the scopes: " + ", ".join(f"'{s}'" for s in needed) + "."
        return False


class HasRole(permissions.BasePermission):
    """The user needs one of the view's ``required_roles`` (dict of HTTP method -> tuple, or a tuple)."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        roles = getattr(view, "required_roles", None)
        if isinstance(roles, dict):
            roles = roles.get(request.method, roles.get("*"))
        if not roles:
            return True
        return has_role(request.user, *roles)
