"""CSRF: every state-changing route a browser session can reach refuses a POST without the CSRF token, and
every ``<form method="post">`` a page renders carries ``csrfmiddlewaretoken``.

Routes come from the URL resolver: all pages, the login/logout views, and every API route (the API accepts
session cookies, and DRF's SessionAuthentication enforces CSRF for them). The client enforces CSRF checks
as a browser-facing server does (Django's test client skips them by default).
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client

from tests.security.conftest import World
from tests.security.routes import site_routes

# Pages that must render at least one POST form for an admin in the security world.
PAGES_WITH_FORMS = {
    "annotation:annotate",
    "annotation:review",
    "annotation:quality-project",
    "annotation:quality-annotator",
    "training:run_list",
    "training:run_detail",
    "training:reward_model_detail",
    "rewardsvc:spot_check",
    "login",
}
SKIP_GET = {"logout"}  # GET is not a logout in Django 5 (405); nothing to render


def _is_csrf_refusal(response) -> bool:
    body = response.content.decode(errors="replace")
    return response.status_code == 403 and ("CSRF" in body or "csrf" in body)


class _FormParser(HTMLParser):
    """Collects each POST form and whether it has a csrfmiddlewaretoken input."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._open = {
                "method": (attrs.get("method") or "get").lower(),
                "action": attrs.get("action"),
                "csrf": 0,
            }
            self.forms.append(self._open)
        elif (
            tag == "input"
            and self._open is not None
            and attrs.get("name") == "csrfmiddlewaretoken"
            and attrs.get("value")
        ):
            self._open["csrf"] += 1

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None


def _post_forms(html: str) -> list[dict]:
    parser = _FormParser()
    parser.feed(html)
    return [f for f in parser.forms if f["method"] == "post"]


def _routes(world: World):
    from tests.security.routes import route_ids

    return [r for r in site_routes(route_ids(world)) if not r.path.startswith(("/static/", "/admin/"))]


@pytest.mark.parametrize("role", ["admin", "annotator"])
def test_post_without_csrf_token_is_refused_everywhere(world: World, role: str):
    """Logged in, a POST (and PUT/PATCH/DELETE on the API) with no CSRF token is refused with Django's or
    DRF's CSRF 403 on every route, before any view logic runs."""
    client = world.client_for(role, enforce_csrf=True)
    refused = []
    for route in _routes(world):
        if route.name in ("health", "ready", "metrics", "schema", "swagger-ui"):
            continue  # GET-only public endpoints: no session state to protect
        methods = ("post", "put", "patch", "delete") if route.is_api else ("post",)
        for method in methods:
            response = getattr(client, method)(route.path, {}, content_type="application/json")
            if response.status_code == 405:
                continue  # the route does not take this method at all
            assert _is_csrf_refusal(response), (
                f"{method.upper()} {route.path} without a CSRF token -> {response.status_code}"
            )
            refused.append(route.name)
    assert len(set(refused)) >= 40, sorted(set(refused))


def test_anonymous_login_post_needs_csrf():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "x", "password": "y"})
    assert _is_csrf_refusal(response)


def test_the_same_post_with_the_token_passes_the_csrf_check(world: World):
    """The control: the refusal above is the CSRF check, not something else. With the cookie's token in
    the header the same session POST reaches the view."""
    client = world.client_for("reviewer", enforce_csrf=True)
    page = client.get(f"/projects/{world.project.pk}/quality/")
    assert page.status_code == 200
    token = client.cookies["csrftoken"].value
    path = f"/projects/{world.project.pk}/quality/annotators/{world.users['annotator'].pk}/flag"
    assert _is_csrf_refusal(client.post(path, {"note": "x"}))
    response = client.post(path, {"note": "x"}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 302
    api = client.post(
        f"/api/v1/quality/flags/{world.flag.pk}/clear", {"note": "ok"}, content_type="application/json"
    )
    assert _is_csrf_refusal(api)
    api = client.post(
        f"/api/v1/quality/flags/{world.flag.pk}/clear",
        {"note": "ok"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert api.status_code == 200


def test_every_post_form_carries_the_csrf_token(world: World):
    """GET every page as an admin (who may see all of them) and parse each POST form."""
    client = world.client_for("admin", enforce_csrf=True)
    anonymous = Client(enforce_csrf_checks=True)
    pages_with_forms, missing = set(), []
    for route in _routes(world):
        if route.is_api or route.name in SKIP_GET:
            continue
        response = (anonymous if route.name == "login" else client).get(route.path)
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        for form in _post_forms(response.content.decode()):
            pages_with_forms.add(route.name)
            if form["csrf"] != 1:
                missing.append(f"{route.path}: form action={form['action']!r} has {form['csrf']} csrf inputs")
    assert not missing, "\n".join(missing)
    assert pages_with_forms >= PAGES_WITH_FORMS, sorted(PAGES_WITH_FORMS - pages_with_forms)


def test_form_parser_sees_a_missing_token():
    """The parser itself can fail: a POST form without the hidden input is reported."""
    html = '<form method="post" action="/x"><input name="a"></form><form method="get"></form>'
    assert _post_forms(html) == [{"method": "post", "action": "/x", "csrf": 0}]
