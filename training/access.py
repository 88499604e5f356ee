"""The one role check of the training pages (snapshots, reward runs and models, policy runs), and who sees
server paths in the training API."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from annotation.auth import has_role, is_admin
from annotation.models import Role


def require_engineer(user, *, what: str = "Training pages") -> None:
    """Raise ``PermissionDenied`` (403) unless ``user`` is an ML engineer or an admin."""
    if not has_role(user, Role.ENGINEER, Role.ADMIN):
        raise PermissionDenied(f"{what} are for ML engineers and admins.")


class ArtifactDirForAdmins:
    """Serializer mixin: ``artifact_dir`` (a server path) stays in admins' responses only. It is nothing a
    non-admin can use, and something to probe the server's layout with."""

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not is_admin(request.user):
            data.pop("artifact_dir", None)
        return data
