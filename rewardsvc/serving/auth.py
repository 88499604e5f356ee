"""Who is calling the reward server: an API token (``Authorization: Bearer`` or the ``/t/<token>/`` URL
prefix) with the needed scope, or a trusted network. Token lookups are cached, shared between concurrent
first requests (single flight), and re-checked against the database every ``token_check_seconds``."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from rewardsvc.serving.config import ServerConfig
from rewardsvc.serving.errors import ApiError

#: Runs a blocking (database) call off the event loop; ``RewardService.db``.
DbCall = Callable[..., Awaitable[Any]]


@dataclass
class Principal:
    kind: str  # "token" or "trusted"
    token_id: int | None = None
    is_staff: bool = False
    rate_limit_per_minute: int | None = None
    can_reload: bool = False
    budget_root_id: int | None = None
    budget_root_rate_limit_per_minute: int | None = None


_TOKEN_IN_PATH = re.compile(r"/t/[^/\s]+/")


class RedactTokenFilter(logging.Filter):
    """Keep tokens carried in URL paths out of access logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_PATH.sub("/t/***/", a) if isinstance(a, str) else a for a in record.args
            )
        return True


class TokenAuth:
    """Authenticates requests against ``rewardsvc.selectors.token_info`` with a per-process cache."""

    def __init__(self, config: ServerConfig, db: DbCall) -> None:
        self.config = config
        self.db = db
        self.networks = [ipaddress.ip_network(n, strict=False) for n in config.trusted_networks]
        self._token_cache: dict[str, tuple[float, Any]] = {}
        self._lookups: dict[str, asyncio.Future] = {}

    async def authenticate(self, request: Request, scope: str = "score") -> Principal:
        """Who is calling: a token (URL path or Authorization header) with ``scope``, or a trusted network.
        Checked before the body is read; the rate limit is charged once the item count is known."""
        raw = request.path_params.get("token")
        if raw is None:
            header = request.headers.get("authorization", "")
            parts = header.split()
            if len(parts) == 2 and parts[0].lower() in ("bearer", "token"):
                raw = parts[1]
            elif header:
                raise ApiError(401, "not_authenticated", "Authorization header must be 'Bearer <token>'.")
        if raw is None:
            if self._trusted(request):
                return Principal("trusted", is_staff=False)
            raise ApiError(
                401,
                "not_authenticated",
                "Send 'Authorization: Bearer <token>' or use the /t/<token>/ URL prefix.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        info = await self._lookup(raw)
        if info is None:
            raise ApiError(401, "authentication_failed", "Invalid, revoked or expired token.")
        if not info.has_scope(scope):
            raise ApiError(403, "permission_denied", f"This token lacks the '{scope}' scope.")
        if not info.can_score:
            raise ApiError(
                403,
                "permission_denied",
                f"Scoring with project {self.config.project_id}'s reward model needs membership of that project.",
            )
        return Principal(
            "token",
            info.token_id,
            info.is_staff,
            info.rate_limit_per_minute,
            can_reload=info.can_reload,
            budget_root_id=info.budget_root_id,
            budget_root_rate_limit_per_minute=info.budget_root_rate_limit_per_minute,
        )

    def _trusted(self, request: Request) -> bool:
        if not self.networks or request.client is None:
            return False
        try:
            addr = ipaddress.ip_address(request.client.host)
        except ValueError:
            return False
        return any(addr in net for net in self.networks)

    async def check_cached_tokens(self) -> int:
        """Drop cached tokens that no longer authenticate and refresh the others' scopes and limits from
        the database. Returns how many were dropped."""
        from rewardsvc.selectors import token_infos_by_id

        ids = {info.token_id for _, info in self._token_cache.values() if info is not None}
        if not ids:
            return 0
        live = await self.db(token_infos_by_id, ids, project_id=self.config.project_id)
        dropped = 0
        for key, (expires, info) in list(self._token_cache.items()):
            if info is None or info.token_id not in ids:
                continue  # a miss, or cached after the query started
            fresh = live.get(info.token_id)
            if fresh is None:
                self._token_cache.pop(key, None)  # the next request looks it up (and is refused)
                dropped += 1
            elif fresh != info:
                self._token_cache[key] = (expires, fresh)
        return dropped

    async def _lookup(self, raw: str):
        from rewardsvc.selectors import token_info

        key = hashlib.sha256(raw.encode()).hexdigest()
        now = time.monotonic()
        hit = self._token_cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        # Concurrent first requests with one token share one lookup (single flight): without it each queued
        # its own on the one database thread and they reached the batcher one by one.
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = asyncio.ensure_future(self.db(token_info, raw, project_id=self.config.project_id))
            self._lookups[key] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(key, None))
        info = await asyncio.shield(lookup)
        # Misses are cached briefly too, so a bad token cannot make every request hit the database.
        ttl = (
            self.config.token_cache_seconds if info is not None else min(5.0, self.config.token_cache_seconds)
        )
        if len(self._token_cache) > 10_000:
            self._token_cache.clear()
        self._token_cache[key] = (now + ttl, info)
        return info
