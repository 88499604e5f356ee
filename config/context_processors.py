"""Template context shared by every page."""

from __future__ import annotations

from annotation.auth import has_role
from config.jobs import broker_available


def site_context(request) -> dict:
    """``jobs_delayed`` while the broker is unreachable, and the navigation flags (engineer / reviewer
    links) for logged-in users."""
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated:
        return {}
    return {
        "jobs_delayed": not broker_available(),
        "nav_is_engineer": has_role(user, "engineer"),
        "nav_is_reviewer": has_role(user, "reviewer"),
    }
