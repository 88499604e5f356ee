"""Site-wide views: home, login with rate limiting, health and readiness."""

from __future__ import annotations

import contextlib
import ipaddress

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from annotation.auth import has_role, visible_projects
from annotation.selectors.progress import home_progress
from annotation.selectors.projects import project_access_for_user, project_task_counts, reviewer_projects

LOGIN_ATTEMPTS_PER_WINDOW = 10
LOGIN_WINDOW_SECONDS = 300


@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = list(visible_projects(request.user).order_by("name"))
    counts = project_task_counts(project_ids=[p.pk for p in projects])
    bars = home_progress(projects=projects, user=request.user)
    for project in projects:
        project.task_total, project.task_open = counts[project.pk]
        project.bars = bars[project.pk]
    access = project_access_for_user(request.user)
    # Each link is shown only to those its page lets in: the review queue by reviewer_projects, the quality
    # pages by ProjectAccess.can_review, a lead's pages by ProjectAccess.can_manage (the pages' own rules).
    return render(
        request,
        "home.html",
        {
            "projects": projects,
            "can_create": has_role(request.user, "engineer"),
            "reviewable_ids": set(reviewer_projects(request.user).values_list("pk", flat=True)),
            "quality_ids": {p.pk for p in projects if access.can_review(p.pk)},
            "managed_ids": {p.pk for p in projects if access.can_manage(p.pk)},
        },
    )


def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers. The broker is reported but does not fail readiness: annotation
    keeps working while jobs are delayed."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        checks["database"] = f"error: {exc.__class__.__name__}"
    checks["broker"] = broker_status()
    ok = checks["database"] == "ok"
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


def broker_status() -> str:
    from config.celery import app

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return "ok"
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=1)
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return f"unavailable: {exc.__class__.__name__}"


def client_address(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or with ``TRUSTED_PROXIES = N`` the N-th entry from the right
    of ``X-Forwarded-For`` (the one the outermost of our proxies appended), as werkzeug's ProxyFix does.
    A header with fewer entries, or one that is not an IP address, falls back to ``REMOTE_ADDR``."""
    remote = request.META.get("REMOTE_ADDR", "?")
    trusted = settings.TRUSTED_PROXIES
    if not trusted:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if len(hops) < trusted:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-trusted]))
    except ValueError:
        return remote


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login view with a per-IP limit on failed attempts (cache-based).

    Each attempt is counted atomically (``cache.add`` + ``cache.incr``) *before* its password is checked, and
    a successful login hands its count back: concurrent guesses cannot all pass a "count below the limit"
    check that only rises after their passwords were checked, so at most ``LOGIN_ATTEMPTS_PER_WINDOW``
    passwords are checked per window however many requests arrive at once."""

    def _key(self) -> str:
        return f"login-fail:{client_address(self.request)}"

    def post(self, request, *args, **kwargs):
        key = self._key()
        cache.add(key, 0, LOGIN_WINDOW_SECONDS)
        try:
            attempts = cache.incr(key)
        except ValueError:  # expired between add and incr: this attempt opens a new window
            cache.add(key, 1, LOGIN_WINDOW_SECONDS)
            attempts = 1
        if attempts > LOGIN_ATTEMPTS_PER_WINDOW:
            return render(
                request,
                "registration/login.html",
                # An unbound form: rendering a bound one would validate it, which checks the password.
                {"form": self.get_form_class()(request), "rate_limited": True},
                status=429,
            )
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        # Only failures use up the allowance: give back the attempt counted before the check.
        with contextlib.suppress(ValueError):
            cache.decr(self._key())
        return super().form_valid(form)
