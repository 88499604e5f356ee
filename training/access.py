"""The one role check of the training pages (snapshots, reward runs and models, policy runs)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from annotation.auth import has_role
from annotation.models import Role


def require_engineer(user, *, what: str = "Training pages") -> None:
    """Raise ``PermissionDenied`` (403) unless ``user`` is an ML engineer or an admin."""
    if not has_role(user, Role.ENGINEER, Role.ADMIN):
        raise PermissionDenied(f"{what} are for ML engineers and admins.")
