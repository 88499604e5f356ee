"""Per-token request rate limit for the REST API.

A token's ``rate_limit_per_minute`` (or ``PREFLAB_API_RATE_LIMIT`` when the token has none; 0 = no limit)
caps the requests made with it, and a token minted by another token is charged to the chain's first token
(``budget_root``) as well, so minting shares a budget instead of multiplying it: a token bucket that holds one minute's worth, so bursts up to the limit
pass and a steady client gets the limit per minute. Over it, the answer is 429 with ``Retry-After``.
Sessions (the web UI) are not limited here; login attempts are limited by the login view.

With ``PREFLAB_CACHE_URL`` (Redis) the buckets live in Redis, so the limit holds across gunicorn workers
and web replicas; without it (``make run``) each process counts alone. The reward server counts scored
items with the same field, in its own buckets (see docs/security.md).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from annotation.models import ApiToken
from annotation.ratelimit import RedisTokenBuckets, TokenBuckets, token_buckets


def _default_limit() -> int:
    return settings.PREFLAB_API_RATE_LIMIT


_buckets: dict[str, TokenBuckets | RedisTokenBuckets] = {}


def _buckets_for_settings() -> TokenBuckets | RedisTokenBuckets:
    """The buckets for the configured ``CACHE_URL`` (looked up per call, so settings overrides apply)."""
    url = getattr(settings, "CACHE_URL", "") or ""
    buckets = _buckets.get(url)
    if buckets is None:
        buckets = _buckets.setdefault(url, token_buckets(url, "api"))
    return buckets


def reset_buckets() -> None:
    """Forget every bucket (tests; a restarted process starts empty too)."""
    _buckets_for_settings().clear()


class TokenRateThrottle(BaseThrottle):
    """DRF throttle: limits requests authenticated by an API token to the token's rate."""

    def allow_request(self, request, view) -> bool:
        token = request.auth
        self._wait = None
        if not isinstance(token, ApiToken):
            return True
        # A minted token is charged to its chain's root too, so children share the root's budget.
        for key, limit in token.rate_buckets(_default_limit()):
            wait = _buckets_for_settings().take(key, limit)
            if wait > 0:
                self._wait = wait
                return False
        return True

    def wait(self) -> float | None:
        return self._wait
