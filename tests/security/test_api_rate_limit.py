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
