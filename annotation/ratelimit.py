"""A token bucket, the rate limit used by the API (requests per token) and the reward server (scored items
per token). Plain Python, no Django: the reward server imports it without setting Django up."""

from __future__ import annotations

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
