"""Template context shared by every page."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from annotation.auth import has_role
from annotation.selectors.projects import reviewer_projects
from config.jobs import broker_available


def site_context(request) -> dict:
    """``jobs_delayed`` while the broker is unreachable, and the navigation flags (engineer / reviewer
    links) for logged-in users. ``nav_review_ids``: the projects whose review queue the user works
    (``reviewer_projects``, the review pages' own rule), read only by a page that shows a Review link."""
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated:
        return {}
    return {
        "jobs_delayed": not broker_available(),
        "nav_is_engineer": has_role(user, "engineer"),
        "nav_is_reviewer": has_role(user, "reviewer"),
        "nav_review_ids": SimpleLazyObject(lambda: set(reviewer_projects(user).values_list("pk", flat=True))),
    }
