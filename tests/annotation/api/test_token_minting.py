"""Minting an API token with a token: never a longer-lived or faster token than the parent (a session user
is not limited)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import ApiToken

pytestmark = pytest.mark.django_db

API = "/api/v1"


# Token minting escalation ----------------------------------------------------------------------------------


def _parent_token(user, *, expires_in: timedelta | None = timedelta(days=1), rate_limit: int | None = 30):
    raw = ApiToken.generate_key()
    token = ApiToken.objects.create(
        user=user,
        name="parent",
        key_prefix=raw[:8],
        key_hash=ApiToken.hash_key(raw),
        scopes=["annotate"],
        expires_at=timezone.now() + expires_in if expires_in else None,
        rate_limit_per_minute=rate_limit,
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return token, client


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"rate_limit_per_minute": 30}, "expires_at"),
        ({"rate_limit_per_minute": 30, "expires_at": "later"}, "expires_at"),
        ({"expires_at": "sooner"}, "rate_limit_per_minute"),
        ({"expires_at": "sooner", "rate_limit_per_minute": 31}, "rate_limit_per_minute"),
    ],
)
def test_token_cannot_mint_a_longer_lived_or_faster_token(annotator, extra, field):
    parent, client = _parent_token(annotator)
    body = {"name": "child", "scopes": ["annotate"], **extra}
    if body.get("expires_at") == "later":
        body["expires_at"] = (parent.expires_at + timedelta(hours=1)).isoformat()
    elif body.get("expires_at") == "sooner":
        body["expires_at"] = (parent.expires_at - timedelta(hours=1)).isoformat()

    res = client.post(f"{API}/tokens/", body, format="json")

    assert res.status_code == 403
    assert field in res.json()["error"]["fields"]
    assert not ApiToken.objects.filter(name="child").exists()


def test_token_may_mint_a_weaker_token(annotator):
    parent, client = _parent_token(annotator)
    expires_at = parent.expires_at - timedelta(hours=1)
    body = {
        "name": "child",
        "scopes": ["annotate"],
        "expires_at": expires_at.isoformat(),
        "rate_limit_per_minute": 10,
    }

    res = client.post(f"{API}/tokens/", body, format="json")

    assert res.status_code == 201, res.json()
    child = ApiToken.objects.get(name="child")
    assert (child.expires_at, child.rate_limit_per_minute) == (expires_at, 10)


def test_unlimited_token_may_mint_an_unlimited_token(annotator):
    _, client = _parent_token(annotator, expires_in=None, rate_limit=None)
    res = client.post(f"{API}/tokens/", {"name": "child", "scopes": ["annotate"]}, format="json")
    assert res.status_code == 201, res.json()


def test_session_user_is_not_limited(annotator):
    client = APIClient()
    client.force_login(annotator)
    res = client.post(f"{API}/tokens/", {"name": "child", "scopes": ["annotate"]}, format="json")
    assert res.status_code == 201, res.json()
    child = ApiToken.objects.get(name="child")
    assert (child.expires_at, child.rate_limit_per_minute) == (None, None)
