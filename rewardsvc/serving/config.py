"""The reward server's configuration: everything it reads from ``PREFLAB_RM_*`` environment variables, read
in this one place (``ServerConfig.from_env``) when the app is built, never at import."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from rewardsvc.batching import BatchingConfig


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def _env_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


@dataclass
class ServerConfig:
    """Everything the reward server reads from ``PREFLAB_RM_*`` environment variables."""

    project_id: int | None = None
    """Serve this project's active reward model (``PREFLAB_RM_PROJECT``)."""
    version: int | None = None
    """Pin one version instead of following promotions (``PREFLAB_RM_VERSION``)."""
    model_dir: str | None = None
    """Serve a bare save_pretrained dir, no registry (``PREFLAB_RM_MODEL_DIR``; benchmarks)."""
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    """``PREFLAB_RM_BATCH_WINDOW_MS``, ``PREFLAB_RM_MAX_BATCH_ITEMS``, ``PREFLAB_RM_MAX_BATCH_TOKENS``,
    ``PREFLAB_RM_FORWARD_OVERHEAD_TOKENS``, ``PREFLAB_RM_MAX_QUEUE``."""
    num_threads: int = 0
    """torch intra-op threads for forwards (``PREFLAB_RM_THREADS``; 0: the CPU count). Inter-op is 1."""
    max_items_per_request: int = 256
    """``PREFLAB_RM_MAX_ITEMS``: more items in one request answer 413."""
    max_chars_per_item: int = 50_000
    """``PREFLAB_RM_MAX_CHARS``: a longer prompt or response answers 413."""
    max_body_bytes: int = 16 * 1024 * 1024
    """``PREFLAB_RM_MAX_BODY_BYTES``: a larger request body answers 413."""
    default_rate_limit_per_minute: int = 0
    """Scored items per minute per token when the token sets none (``PREFLAB_RM_RATE_LIMIT``; 0: none)."""
    rate_limit_url: str | None = None
    """Redis for the rate-limit buckets (``PREFLAB_CACHE_URL``): replicas then share each token's limit.
    Unset: each process counts alone."""
    token_cache_seconds: float = 30.0
    """How long a token lookup is cached (``PREFLAB_RM_TOKEN_CACHE_SECONDS``)."""
    token_check_seconds: float = 2.0
    """How often the cached tokens are checked against the database (``PREFLAB_RM_TOKEN_CHECK_SECONDS``): a
    revoked or expired token, or a deactivated user, stops working within this long, and changed scopes or
    limits apply. One or two small queries per check. 0: off (then revocation takes the cache time)."""
    trusted_networks: list[str] = field(default_factory=list)
    """CIDRs whose requests need no token (``PREFLAB_RM_TRUSTED_NETWORKS``; empty = off, the default)."""
    poll_seconds: float = 5.0
    """How often to check the registry for a newly promoted version (``PREFLAB_RM_POLL_SECONDS``; 0: off)."""
    sample_rate: float = 0.01
    """Share of prompts whose scored pairs are kept as ScoredSample rows (``PREFLAB_RM_SAMPLE_RATE``)."""
    sample_flush_seconds: float = 2.0

    @classmethod
    def from_env(cls) -> ServerConfig:
        batching = BatchingConfig(
            window_ms=_env_float("PREFLAB_RM_BATCH_WINDOW_MS", 5.0),
            max_batch_items=_env_int("PREFLAB_RM_MAX_BATCH_ITEMS", 64),
            max_batch_tokens=_env_int("PREFLAB_RM_MAX_BATCH_TOKENS", 8192),
            forward_overhead_tokens=_env_int("PREFLAB_RM_FORWARD_OVERHEAD_TOKENS", 48),
            max_queue_items=_env_int("PREFLAB_RM_MAX_QUEUE", 4096),
        )
        networks = [n.strip() for n in os.environ.get("PREFLAB_RM_TRUSTED_NETWORKS", "").split(",")]
        return cls(
            project_id=_env_int("PREFLAB_RM_PROJECT", None),
            version=_env_int("PREFLAB_RM_VERSION", None),
            model_dir=os.environ.get("PREFLAB_RM_MODEL_DIR") or None,
            batching=batching,
            num_threads=_env_int("PREFLAB_RM_THREADS", 0),
            max_items_per_request=_env_int("PREFLAB_RM_MAX_ITEMS", 256),
            max_chars_per_item=_env_int("PREFLAB_RM_MAX_CHARS", 50_000),
            max_body_bytes=_env_int("PREFLAB_RM_MAX_BODY_BYTES", 16 * 1024 * 1024),
            default_rate_limit_per_minute=_env_int("PREFLAB_RM_RATE_LIMIT", 0),
            rate_limit_url=os.environ.get("PREFLAB_CACHE_URL", "").strip() or None,
            token_cache_seconds=_env_float("PREFLAB_RM_TOKEN_CACHE_SECONDS", 30.0),
            token_check_seconds=_env_float("PREFLAB_RM_TOKEN_CHECK_SECONDS", 2.0),
            trusted_networks=[n for n in networks if n],
            poll_seconds=_env_float("PREFLAB_RM_POLL_SECONDS", 5.0),
            sample_rate=_env_float("PREFLAB_RM_SAMPLE_RATE", 0.01),
        )


def setup_django() -> None:
    """Set Django up for a server started by uvicorn (``config.settings`` unless the environment names
    another settings module); a no-op when it is already set up (tests, ``serve_rewards``)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup(set_prefix=False)
