"""Per-token request rate limit for the REST API.

A token's ``rate_limit_per_minute`` (or ``PREFLAB_API_RATE_LIMIT`` when the token has none; 0 = no limit)
caps the requests made with it: a token bucket that holds one minute's worth, so bursts up to the limit
pass and a steady client gets the limit per minute. Over it, the answer is 429 with ``Retry-After``.
Sessions (the web UI) are not limited here; login attempts are limited by the login view.

The buckets live in the web process, so with several web replicas (or gunicorn workers) the limit applies
per process; the reward server counts scored items with the same field (see docs/security.md).
"""

from __future__ import annotations

import os

from rest_framework.throttling import BaseThrottle

from annotation.models import ApiToken
from annotation.ratelimit import TokenBuckets


def _default_limit() -> int:
    try:
        return max(0, int(os.environ.get("PREFLAB_API_RATE_LIMIT", "0")))
    except ValueError:
        return 0


_buckets = TokenBuckets()


def reset_buckets() -> None:
    """Forget every bucket (tests; a restarted process starts empty too)."""
    _buckets.clear()


class TokenRateThrottle(BaseThrottle):
    """DRF throttle: limits requests authenticated by an API token to the token's rate."""

    def allow_request(self, request, view) -> bool:
        token = request.auth
        self._wait = None
        if not isinstance(token, ApiToken):
            return True
        limit = token.rate_limit_per_minute or _default_limit()
        if not limit:
            return True
        wait = _buckets.take(token.pk, limit)
        if wait > 0:
            self._wait = wait
            return False
        return True

    def wait(self) -> float | None:
        return self._wait
