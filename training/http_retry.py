"""One retry policy for PrefLab's HTTP calls (the reward clients, the policy loop's HTTP reward): retry
connection errors, timeouts, 429 and 502/503/504; wait what ``Retry-After`` asks (capped), else back off
exponentially with jitter; give up after ``max_retries`` extra attempts. Built on tenacity.

It lives in ``training`` (below ``rewardsvc``) so both stages use the same code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import httpx
import tenacity

RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    """Extra attempts after the first for retryable failures."""
    backoff: float = 0.25
    """First backoff in seconds; doubles each retry (plus up to 25% jitter), capped at ``max_backoff``."""
    max_backoff: float = 8.0
    """Longest wait between attempts, also the cap on a server's ``Retry-After``."""


class _RetryableResponse(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (the delta-seconds form; an HTTP date is treated as absent)."""
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class _wait_for_server_or_backoff(tenacity.wait.wait_base):
    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, _RetryableResponse):
            asked = retry_after_seconds(exc.response)
            if asked is not None:
                return min(asked, self.policy.max_backoff)
        delay = min(self.policy.backoff * 2 ** (retry_state.attempt_number - 1), self.policy.max_backoff)
        return delay * (1 + random.random() * 0.25)


def _retry_kwargs(policy: RetryPolicy) -> dict[str, Any]:
    return {
        "retry": tenacity.retry_if_exception_type((httpx.TransportError, _RetryableResponse)),
        "stop": tenacity.stop_after_attempt(policy.max_retries + 1),
        "wait": _wait_for_server_or_backoff(policy),
        "reraise": True,
    }


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code in RETRY_STATUSES:
        raise _RetryableResponse(response)
    return response


def send(client: httpx.Client, method: str, url: str, policy: RetryPolicy, **kwargs: Any) -> httpx.Response:
    """Send a request under ``policy``. Returns the last response (a success, an error not worth retrying,
    or a retryable one when the attempts ran out); raises ``httpx.TransportError`` when the last attempt
    could not connect or timed out."""
    try:
        for attempt in tenacity.Retrying(**_retry_kwargs(policy)):
            with attempt:
                return _checked(client.request(method, url, **kwargs))
    except _RetryableResponse as exc:
        return exc.response
    raise AssertionError("unreachable")  # pragma: no cover


async def asend(
    client: httpx.AsyncClient, method: str, url: str, policy: RetryPolicy, **kwargs: Any
) -> httpx.Response:
    """``send`` for an ``httpx.AsyncClient`` (waits with ``asyncio.sleep``)."""
    try:
        async for attempt in tenacity.AsyncRetrying(**_retry_kwargs(policy)):
            with attempt:
                return _checked(await client.request(method, url, **kwargs))
    except _RetryableResponse as exc:
        return exc.response
    raise AssertionError("unreachable")  # pragma: no cover
