"""Every route, enumerated from the URL resolver, refuses anonymous users (and never errors), and pages
are refused to users outside the project. New routes are covered automatically."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import make_project, make_task, make_token, make_user

# Routes that are public on purpose.
PUBLIC = {
    "/health",
    "/ready",
    "/metrics",
    "/accounts/login/",
    "/accounts/logout/",
    "/api/schema/",
    "/api/docs/",
}
# /invite/<token>: an invite link is opened by people without an account yet (it creates one).
PUBLIC_PREFIXES = ("/admin/", "/static/", "/invite/")


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def _concrete(route: str, ids: dict[str, int]) -> str | None:
    if route.startswith("^") or "(?P" in route:
        return None  # regex routes (admin, DRF format suffixes) are covered through their plain twins

    def sub(m):
        conv, name = m.group(1) or "str", m.group(2)
        if conv == "int":
            return str(ids.get(name, ids["default"]))
        if conv == "path":
            return "x"
        return str(ids.get(name, "x"))

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", sub, route)


def all_routes(ids):
    seen = set()
    for route in _walk(get_resolver().url_patterns):
        path = _concrete(route, ids)
        if path and path not in seen:
            seen.add(path)
            yield path


@pytest.fixture
def world(db):
    owner = make_user("engineer")
    project = make_project(members=[(owner, "engineer")])
    task = make_task(project)
    return {"project": project, "task": task}


def _ids(world):
    return {"default": world["project"].pk, "task_id": world["task"].pk, "pk": world["project"].pk}


def test_anonymous_is_refused_everywhere(client, world):
    checked = 0
    for path in all_routes(_ids(world)):
        if path in PUBLIC or path.startswith(PUBLIC_PREFIXES):
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            assert response.status_code < 500, f"{method.upper()} {path} -> {response.status_code}"
            if response.status_code == 302:
                assert "/accounts/login/" in response["Location"], f"{path} redirects elsewhere"
            else:
                assert response.status_code in (401, 403, 404, 405), (
                    f"anonymous {method.upper()} {path} -> {response.status_code}"
                )
            checked += 1
    assert checked > 0


def test_outsider_cannot_read_project_routes(client, world):
    """An annotator of another project gets no project data from any route that names the project."""
    outsider = make_user("annotator")
    make_project(members=[(outsider, "annotator")])
    raw = make_token(outsider, ["annotate", "export", "train", "score"])
    client.force_login(outsider)
    secret = world["task"].candidate_a.text
    for path in all_routes(_ids(world)):
        if path in PUBLIC or path.startswith(PUBLIC_PREFIXES):
            continue
        if str(world["project"].pk) not in path and str(world["task"].pk) not in path:
            continue
        for kwargs in ({}, {"HTTP_AUTHORIZATION": f"Bearer {raw}"}):
            response = client.get(path, **kwargs)
            assert response.status_code < 500, f"GET {path} -> {response.status_code}"
            if response.status_code == 200:
                assert secret.encode() not in response.content, f"{path} leaks another project's data"
