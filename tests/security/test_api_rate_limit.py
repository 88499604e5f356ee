"""Per-token request limit on the REST API: a token's ``rate_limit_per_minute`` caps its requests with a 429
and ``Retry-After`` in the usual error body; other tokens, tokens without a limit and sessions are not
affected; ``PREFLAB_API_RATE_LIMIT`` is the default for tokens without their own limit."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.api.throttling import reset_buckets
from annotation.models import ApiToken, Role
from tests.factories import add_member, make_project, make_token, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_buckets():
    reset_buckets()
    yield
    reset_buckets()


def _client(raw: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def test_a_token_over_its_limit_gets_429_with_retry_after():
    user = make_user(Role.ANNOTATOR)
    add_member(make_project(), user)
    limited = make_token(user, ["annotate"], name="limited")
    ApiToken.objects.filter(name="limited").update(rate_limit_per_minute=3)
    other = make_token(user, ["annotate"], name="other")

    api = _client(limited)
    assert [api.get("/api/v1/projects/").status_code for _ in range(3)] == [200, 200, 200]
    over = api.get("/api/v1/projects/")
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "throttled"
    assert "available in" in over.json()["error"]["message"]
    assert 1 <= int(over["Retry-After"]) <= 20  # one request's worth at 3 per minute

    # the limit belongs to that token: the same user's other token and the web session go on
    assert all(_client(other).get("/api/v1/projects/").status_code == 200 for _ in range(5))
    session = APIClient()
    session.force_login(user)
    assert all(session.get("/api/v1/projects/").status_code == 200 for _ in range(5))


def test_the_server_default_applies_to_tokens_without_a_limit(settings):
    settings.PREFLAB_API_RATE_LIMIT = 2
    user = make_user(Role.ANNOTATOR)
    api = _client(make_token(user, ["annotate"]))
    assert [api.get("/api/v1/projects/").status_code for _ in range(3)] == [200, 200, 429]


def test_tokens_minted_by_a_limited_token_share_its_budget():
    """A token limited to 2 per minute mints two children (each allowed 2): the three of them together
    still get 2 requests, not 2 each."""
    user = make_user(Role.ANNOTATOR)
    add_member(make_project(), user)
    parent = make_token(user, ["annotate"], name="parent")
    ApiToken.objects.filter(name="parent").update(rate_limit_per_minute=10)
    children = []
    for i in range(2):
        resp = _client(parent).post(
            "/api/v1/tokens/",
            {"name": f"child-{i}", "scopes": ["annotate"], "rate_limit_per_minute": 2},
            format="json",
        )
        assert resp.status_code == 201, resp.content
        children.append(resp.json()["key"])
    # The minting spent 2 of the parent's 10; lower the parent to 2 and start from full buckets.
    ApiToken.objects.filter(name="parent").update(rate_limit_per_minute=2)
    reset_buckets()
    first, second = (_client(raw) for raw in children)
    assert first.get("/api/v1/projects/").status_code == 200
    assert second.get("/api/v1/projects/").status_code == 200
    third = second.get("/api/v1/projects/")
    assert third.status_code == 429, "each child had a fresh allowance of the parent's limit"
    assert first.get("/api/v1/projects/").status_code == 429
    assert _client(parent).get("/api/v1/projects/").status_code == 429


def test_a_token_minted_by_a_token_records_the_chain_root():
    """Grandchildren draw on the chain's first token, not on their direct parent's own bucket."""
    user = make_user(Role.ANNOTATOR)
    root = make_token(user, ["annotate"], name="root")
    ApiToken.objects.filter(name="root").update(rate_limit_per_minute=50)
    body = {"scopes": ["annotate"], "rate_limit_per_minute": 50}
    child_key = _client(root).post("/api/v1/tokens/", {**body, "name": "c"}, format="json").json()["key"]
    _client(child_key).post("/api/v1/tokens/", {**body, "name": "gc"}, format="json")
    assert ApiToken.objects.get(name="c").budget_root.name == "root"
    assert ApiToken.objects.get(name="gc").budget_root.name == "root"
    session = APIClient()
    session.force_login(user)
    session.post("/api/v1/tokens/", {**body, "name": "from-session"}, format="json")
    assert ApiToken.objects.get(name="from-session").budget_root is None
