"""Python clients for the reward server (sync and async), with timeouts and retries.

    client = PrefLabRewardClient("http://rm:8100", token="pl_...")
    result = client.score([{"prompt": "Hi", "response": "Hello!"}], normalize=True)
    result.rewards, result.model_version, result.truncated

Retries cover connection errors, timeouts, 429 (honouring ``Retry-After``) and 502/503/504, with exponential
backoff and jitter: the one policy of ``training.http_retry``. Large lists are split into requests of ``max_items_per_request`` items; the async client
sends those chunks concurrently (the server batches them together again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from training.http_retry import RETRY_STATUSES, RetryPolicy, asend, send

__all__ = ["RETRY_STATUSES", "AsyncPrefLabRewardClient", "ClientConfig", "PrefLabRewardClient", "ScoreResult"]


@dataclass
class ScoreResult:
    rewards: list[float]
    model_version: int | None
    model: str | None
    normalized: bool = False
    truncated: list[bool] = field(default_factory=list)
    raw_rewards: list[float] | None = None
    uncertainty: list[float] | None = None
    """An ensemble RM's spread of member rewards per item (units of ``rewards``); None for a single model."""


class RewardServerError(Exception):
    """The server answered with an error that retrying will not fix (or retries ran out)."""

    def __init__(self, status: int | None, message: str, body: Any = None) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status, self.message, self.body = status, message, body


@dataclass
class ClientConfig:
    """Timeouts and retry policy shared by both clients."""

    timeout: float = 30.0
    """Seconds for one HTTP attempt (connect + read)."""
    max_retries: int = 4
    """Extra attempts after the first for retryable failures."""
    backoff: float = 0.25
    """First backoff in seconds; doubles each retry (plus up to 25% jitter), capped at ``max_backoff``."""
    max_backoff: float = 8.0
    max_items_per_request: int = 256
    """Keep at or below the server's PREFLAB_RM_MAX_ITEMS."""

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.max_retries, backoff=self.backoff, max_backoff=self.max_backoff)


def _items(items: Sequence[dict | tuple]) -> list[dict]:
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append({"prompt": item.get("prompt", ""), "response": item["response"]})
        else:
            prompt, response = item
            out.append({"prompt": prompt, "response": response})
    return out


def _chunks(items: list[dict], size: int) -> list[list[dict]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _merge(parts: list[dict]) -> ScoreResult:
    rewards, truncated, raw, spread = [], [], [], []
    for part in parts:
        rewards.extend(part["rewards"])
        truncated.extend(part.get("truncated", [False] * len(part["rewards"])))
        raw.extend(part.get("raw_rewards") or [])
        spread.extend(part.get("uncertainty") or [])
    first = parts[0]
    return ScoreResult(
        rewards=rewards,
        model_version=first.get("model_version"),
        model=first.get("model"),
        normalized=bool(first.get("normalized")),
        truncated=truncated,
        raw_rewards=raw or None,
        uncertainty=spread if len(spread) == len(rewards) and spread else None,
    )


def _swapped_away(exc: RewardServerError) -> bool:
    """The version a call was pinned to is no longer served (a promotion landed during the call)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    return exc.status == 404 and (body.get("error") or {}).get("code") == "model_not_loaded"


def _error(response: httpx.Response) -> RewardServerError:
    try:
        body = response.json()
        message = body.get("error", {}).get("message") or response.text
    except ValueError:
        body, message = None, response.text
    return RewardServerError(response.status_code, message, body)


def _result(response: httpx.Response) -> dict:
    if response.status_code < 400:
        return response.json()
    raise _error(response)


class _Base:
    def __init__(self, base_url: str, token: str | None = None, config: ClientConfig | None = None, **kw):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.config = config or ClientConfig(**kw)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _payload(self, chunk: list[dict], normalize: bool, model: int | str | None) -> dict:
        body: dict[str, Any] = {"items": chunk, "normalize": normalize}
        if model is not None:
            body["model"] = model
        return body


class PrefLabRewardClient(_Base):
    """Blocking client (one ``httpx.Client``, keep-alive). Use as a context manager or call ``close``."""

    def __init__(self, base_url: str, token: str | None = None, config: ClientConfig | None = None, **kw):
        super().__init__(base_url, token, config, **kw)
        self._http = httpx.Client(timeout=self.config.timeout, headers=self.headers)

    def __enter__(self) -> PrefLabRewardClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, json: dict | None = None) -> dict:
        try:
            response = send(self._http, method, self.base_url + path, self.config.retry_policy, json=json)
        except httpx.TransportError as exc:
            raise RewardServerError(None, f"{type(exc).__name__}: {exc}") from exc
        return _result(response)

    def score(
        self, items: Sequence[dict | tuple], *, normalize: bool = False, model: int | str | None = None
    ) -> ScoreResult:
        """Score (prompt, response) items; prompts may be text or chat messages. Every chunk of one call is
        scored by the same model version: the first answer's version is pinned for the rest, and if a
        promotion retires it mid-call, the whole call starts again on the new version (once)."""
        if not items:
            return ScoreResult([], None, None)
        chunks = _chunks(_items(items), self.config.max_items_per_request)
        for attempt in range(2):
            try:
                first = self._request("POST", "/v1/reward/score", self._payload(chunks[0], normalize, model))
                pinned = model if model is not None else first.get("model_version")
                rest = [
                    self._request("POST", "/v1/reward/score", self._payload(c, normalize, pinned))
                    for c in chunks[1:]
                ]
                return _merge([first, *rest])
            except RewardServerError as exc:
                if model is not None or attempt or not _swapped_away(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def models(self) -> list[dict]:
        return self._request("GET", "/v1/models")["data"]

    def health(self) -> dict:
        return self._request("GET", "/health")


class AsyncPrefLabRewardClient(_Base):
    """Async client; one instance per event loop. Chunks of a large request are sent concurrently."""

    def __init__(self, base_url: str, token: str | None = None, config: ClientConfig | None = None, **kw):
        super().__init__(base_url, token, config, **kw)
        self._http = httpx.AsyncClient(timeout=self.config.timeout, headers=self.headers)

    async def __aenter__(self) -> AsyncPrefLabRewardClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, json: dict | None = None) -> dict:
        try:
            response = await asend(
                self._http, method, self.base_url + path, self.config.retry_policy, json=json
            )
        except httpx.TransportError as exc:
            raise RewardServerError(None, f"{type(exc).__name__}: {exc}") from exc
        return _result(response)

    async def score(
        self, items: Sequence[dict | tuple], *, normalize: bool = False, model: int | str | None = None
    ) -> ScoreResult:
        """Like the sync client's ``score``; the chunks after the first are sent concurrently, pinned to the
        first answer's model version."""
        if not items:
            return ScoreResult([], None, None)
        chunks = _chunks(_items(items), self.config.max_items_per_request)
        for attempt in range(2):
            try:
                first = await self._request(
                    "POST", "/v1/reward/score", self._payload(chunks[0], normalize, model)
                )
                pinned = model if model is not None else first.get("model_version")
                rest = await asyncio.gather(
                    *(
                        self._request("POST", "/v1/reward/score", self._payload(c, normalize, pinned))
                        for c in chunks[1:]
                    )
                )
                return _merge([first, *rest])
            except RewardServerError as exc:
                if model is not None or attempt or not _swapped_away(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def models(self) -> list[dict]:
        return (await self._request("GET", "/v1/models"))["data"]

    async def health(self) -> dict:
        return await self._request("GET", "/health")
