"""A token bucket, the rate limit used by the API (requests per token) and the reward server (scored items
per token). Plain Python, no Django: the reward server imports it without setting Django up."""

from __future__ import annotations

import threading
import time


class TokenBucket:
    """``per_minute`` units per minute, bursts up to one minute's worth."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.tokens = float(per_minute)
        self.rate = per_minute / 60.0
        self.updated = time.monotonic()

    def take(self, cost: int = 1) -> float:
        """0 if ``cost`` units may go now (they are taken), else the seconds to wait before retrying.
        A cost above the whole capacity passes only from a full bucket (and empties it)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if cost <= self.tokens or (cost > self.capacity and self.tokens >= self.capacity):
            self.tokens -= cost
            return 0.0
        return (min(cost, self.capacity) - self.tokens) / self.rate


class TokenBuckets:
    """One ``TokenBucket`` per key (a token id), thread-safe. A key whose limit changed gets a fresh bucket;
    past ``max_keys`` keys every bucket is forgotten (they refill within a minute anyway)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._buckets: dict[int, TokenBucket] = {}
        self._lock = threading.Lock()

    def take(self, key: int, per_minute: int, cost: int = 1) -> float:
        """``TokenBucket.take`` on ``key``'s bucket at ``per_minute``."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.capacity != per_minute:
                if len(self._buckets) >= self.max_keys:
                    self._buckets.clear()
                bucket = self._buckets[key] = TokenBucket(per_minute)
            return bucket.take(cost)

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()
