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
import threading
import time

from rest_framework.throttling import BaseThrottle

from annotation.models import ApiToken


def _default_limit() -> int:
    try:
        return max(0, int(os.environ.get("PREFLAB_API_RATE_LIMIT", "0")))
    except ValueError:
        return 0


class _Bucket:
    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.tokens = float(per_minute)
        self.rate = per_minute / 60.0
        self.updated = time.monotonic()

    def take(self) -> float:
        """0 if one request may go now, else the seconds until it may."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


_buckets: dict[int, _Bucket] = {}
_lock = threading.Lock()


def reset_buckets() -> None:
    """Forget every bucket (tests; a restarted process starts empty too)."""
    with _lock:
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
        with _lock:
            bucket = _buckets.get(token.pk)
            if bucket is None or bucket.capacity != limit:
                if len(_buckets) > 100_000:
                    _buckets.clear()
                bucket = _buckets[token.pk] = _Bucket(limit)
            wait = bucket.take()
        if wait > 0:
            self._wait = wait
            return False
        return True

    def wait(self) -> float | None:
        return self._wait
