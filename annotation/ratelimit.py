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

    async def atake(self, key: int, per_minute: int, cost: int = 1) -> float:
        """``take`` for an asyncio server (the same interface as ``RedisTokenBuckets.atake``)."""
        return self.take(key, per_minute, cost)

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


# One token bucket per key in Redis, updated atomically by a script on Redis's own clock, so every process
# and replica that points at the same Redis counts against the same bucket. Same arithmetic as TokenBucket;
# a bucket whose limit changed starts full. Returns the wait as a string (Lua numbers become integers).
_TAKE_LUA = """
local capacity = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local rate = capacity / 60.0
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local v = redis.call('HMGET', KEYS[1], 'tokens', 'updated', 'capacity')
local tokens = tonumber(v[1])
local updated = tonumber(v[2])
if tokens == nil or updated == nil or tonumber(v[3]) ~= capacity then
  tokens = capacity
  updated = now
end
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local wait = 0
if cost <= tokens or (cost > capacity and tokens >= capacity) then
  tokens = tokens - cost
else
  wait = (math.min(cost, capacity) - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now), 'capacity', tostring(capacity))
redis.call('EXPIRE', KEYS[1], 120)
return tostring(wait)
"""


class RedisTokenBuckets:
    """``TokenBuckets`` shared through Redis: the same limit holds across web workers and reward-server
    replicas. ``scope`` keeps units apart (API requests, scored items).

    If Redis fails, this process falls back to its own ``TokenBuckets`` (limits then count per process, as
    without Redis) and retries Redis after ``retry_after_s``; a warning is logged. Requests never fail
    because the limiter's store is down, and a hung Redis costs at most ``timeout_s`` once per retry."""

    def __init__(self, url: str, scope: str, *, timeout_s: float = 0.25, retry_after_s: float = 5.0) -> None:
        self.url = url
        self.prefix = f"preflab:ratelimit:{scope}:"
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.local = TokenBuckets()
        self._client = None
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _key(self, key: int) -> str:
        return f"{self.prefix}{key}"

    def _failed(self, exc: Exception) -> None:
        import logging

        logging.getLogger("preflab.ratelimit").warning(
            "rate-limit store %s unreachable (%s); counting in this process for %.0fs",
            self.url.split("@")[-1],
            exc,
            self.retry_after_s,
        )
        self._down_until = time.monotonic() + self.retry_after_s

    def take(self, key: int, per_minute: int, cost: int = 1) -> float:
        if time.monotonic() >= self._down_until:
            try:
                with self._lock:
                    if self._client is None:
                        import redis

                        self._client = redis.Redis.from_url(
                            self.url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s
                        )
                        self._script = self._client.register_script(_TAKE_LUA)
                return float(self._script(keys=[self._key(key)], args=[per_minute, cost]))
            except Exception as exc:  # noqa: BLE001 - any store failure: fall back, never fail the request
                self._failed(exc)
        return self.local.take(key, per_minute, cost)

    async def atake(self, key: int, per_minute: int, cost: int = 1) -> float:
        """``take`` for an asyncio server: the Redis round trip runs on a worker thread, off the loop."""
        if time.monotonic() < self._down_until:
            return self.local.take(key, per_minute, cost)
        import asyncio

        return await asyncio.to_thread(self.take, key, per_minute, cost)

    def clear(self) -> None:
        """Forget every bucket of this scope (tests)."""
        import redis

        self.local.clear()
        client = redis.Redis.from_url(self.url, socket_timeout=self.timeout_s)
        try:
            keys = list(client.scan_iter(match=f"{self.prefix}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def token_buckets(url: str | None, scope: str) -> TokenBuckets | RedisTokenBuckets:
    """Shared buckets on ``url`` (a Redis URL), else this process's own."""
    return RedisTokenBuckets(url, scope) if url else TokenBuckets()
