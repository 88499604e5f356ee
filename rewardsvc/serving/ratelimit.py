"""Scored items per minute per token (and per minted token's chain root), in token buckets that replicas
share through Redis when ``PREFLAB_CACHE_URL`` is set."""

from __future__ import annotations

from annotation.ratelimit import token_buckets
from rewardsvc.serving.auth import Principal
from rewardsvc.serving.config import ServerConfig
from rewardsvc.serving.errors import ApiError


class RateLimiter:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.buckets = token_buckets(config.rate_limit_url, "rm")

    async def charge(self, principal: Principal, cost: int) -> None:
        """Take ``cost`` scored items from the caller's buckets, or answer 429 with ``Retry-After``."""
        if principal.token_id is None:
            return
        default = self.config.default_rate_limit_per_minute
        buckets = [(principal.token_id, principal.rate_limit_per_minute or default)]
        if principal.budget_root_id is not None:  # a minted token shares its chain root's budget
            buckets.insert(
                0, (principal.budget_root_id, principal.budget_root_rate_limit_per_minute or default)
            )
        for key, limit in buckets:
            if not limit:
                continue
            wait = await self.buckets.atake(key, limit, cost)
            if wait > 0:
                raise ApiError(
                    429,
                    "throttled",
                    f"Rate limit of {limit} scored items per minute exceeded; retry in {wait:.1f}s.",
                    headers={"Retry-After": str(max(1, int(wait + 0.999)))},
                )
