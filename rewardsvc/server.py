"""The reward server: an ASGI (Starlette) app that loads a reward model once and scores with dynamic
micro-batching across concurrent requests.

Run: ``uvicorn rewardsvc.server:app`` (or ``manage.py serve_rewards``) with ``PREFLAB_RM_PROJECT`` (serve
the project's active RM, hot-swapping on promotion), optionally ``PREFLAB_RM_VERSION`` (pin one), or
``PREFLAB_RM_MODEL_DIR`` (a bare model dir, for benchmarks). Several replicas can sit behind any load
balancer: each is stateless apart from its in-memory rate-limit buckets and token cache.

Routes (also under ``/t/<token>/`` for clients that cannot send headers, e.g. OpenRLHF's remote RM):
``POST /v1/reward/score`` (native), ``POST /get_reward`` (OpenRLHF), ``POST /classify`` and
``POST /pooling`` (vLLM), ``GET /health``, ``GET /v1/models``, ``GET /metrics``, ``POST /v1/admin/reload``.
See docs/reward-serving.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from annotation.ratelimit import token_buckets
from rewardsvc.batching import BatcherClosed, BatchingConfig, MicroBatcher, QueueFull
from rewardsvc.scoring import EncodedInput, RewardScorer, sigmoid

log = logging.getLogger("rewardsvc.server")


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


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message", "fields"?}}`` (the PrefLab API format)."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields, self.headers = (
            status,
            code,
            message,
            fields,
            headers,
        )

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": {"code": self.code, "message": self.message}}
        if self.fields:
            body["error"]["fields"] = self.fields
        return JSONResponse(body, status_code=self.status, headers=self.headers)


# --- metrics ---------------------------------------------------------------------------------------------
class ServerMetrics:
    """Prometheus metrics in the app's own registry (several apps may live in one test process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "preflab_rm_requests", "Scoring requests", ["route", "status"], registry=self.registry
        )
        self.items = Counter("preflab_rm_items", "Items scored", ["route"], registry=self.registry)
        self.latency = Histogram(
            "preflab_rm_request_seconds",
            "Request latency",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.batch_items = Histogram(
            "preflab_rm_batch_items",
            "Items per forward",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.batch_tokens = Histogram(
            "preflab_rm_batch_padded_tokens",
            "Padded tokens per forward",
            buckets=(64, 256, 1024, 4096, 8192, 16384, 65536),
            registry=self.registry,
        )
        self.forward_seconds = Histogram(
            "preflab_rm_forward_seconds",
            "Forward pass time",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.queue_depth = Gauge("preflab_rm_queue_depth", "Inputs waiting", registry=self.registry)
        self.truncated = Counter("preflab_rm_truncated_items", "Inputs cut", registry=self.registry)
        self.swaps = Counter("preflab_rm_model_swaps", "Hot swaps", registry=self.registry)
        self.model_version = Gauge("preflab_rm_model_version", "Version served", registry=self.registry)

    def on_forward(self, items: int, padded_tokens: int, seconds: float) -> None:
        self.batch_items.observe(items)
        self.batch_tokens.observe(padded_tokens)
        self.forward_seconds.observe(seconds)


# --- loaded models and hot swap ---------------------------------------------------------------------------
@dataclass
class LoadedModel:
    scorer: RewardScorer
    batcher: MicroBatcher
    model_id: str
    version: int | None
    reward_model_pk: int | None = None
    inflight: int = 0
    loaded_at: float = field(default_factory=time.time)


def _set_thread_limits(num_threads: int) -> Callable[[], None]:
    def init() -> None:
        import torch

        torch.set_num_threads(num_threads or os.cpu_count() or 1)

    return init


class ModelHolder:
    """The served model, swapped atomically. Requests ``acquire`` the current one and keep it to the end,
    so a swap never fails a request: the old model drains its in-flight requests, then is closed."""

    def __init__(
        self, config: ServerConfig, metrics: ServerMetrics, callers_in_flight: Callable[[], int] | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.callers_in_flight = callers_in_flight
        self.current: LoadedModel | None = None
        self.draining: list[LoadedModel] = []
        self._swap_lock = asyncio.Lock()
        self._closers: set[asyncio.Task] = set()

    def _build(self, model_dir: str, *, version, model_id, pk, mean, std, max_length) -> LoadedModel:
        import torch

        torch.set_num_threads(self.config.num_threads or os.cpu_count() or 1)
        scorer = RewardScorer.load(
            model_dir, max_length=max_length, reward_mean=mean, reward_std=std, version=version, name=model_id
        )
        batcher = MicroBatcher(
            scorer.forward,
            self.config.batching,
            on_forward=self.metrics.on_forward,
            thread_initializer=_set_thread_limits(self.config.num_threads),
            callers_in_flight=self.callers_in_flight,
        )
        return LoadedModel(scorer, batcher, model_id, scorer.version, pk)

    async def load(
        self, *, model_dir: str, version, model_id: str, pk=None, mean=None, std=None, max_length=None
    ):
        """Load a model beside the current one, then switch to it; the old one drains in the background."""
        async with self._swap_lock:
            new = await asyncio.to_thread(
                self._build,
                model_dir,
                version=version,
                model_id=model_id,
                pk=pk,
                mean=mean,
                std=std,
                max_length=max_length,
            )
            new.batcher.start()
            old, self.current = self.current, new  # the atomic switch: one reference assignment
            self.metrics.model_version.set(new.version or 0)
            if old is not None:
                self.metrics.swaps.inc()
                self.draining.append(old)
                task = asyncio.get_running_loop().create_task(self._retire(old))
                self._closers.add(task)
                task.add_done_callback(self._closers.discard)
            log.info("serving %s (version %s)", model_id, new.version)
            return new

    async def _retire(self, old: LoadedModel) -> None:
        while old.inflight > 0:
            await asyncio.sleep(0.01)
        await old.batcher.aclose()
        with contextlib.suppress(ValueError):
            self.draining.remove(old)

    @contextlib.contextmanager
    def acquire(self):
        model = self.current
        if model is None:
            raise ApiError(503, "not_ready", "No reward model is loaded yet.")
        model.inflight += 1
        try:
            yield model
        finally:
            model.inflight -= 1

    async def aclose(self) -> None:
        for task in list(self._closers):
            with contextlib.suppress(BaseException):
                await task
        for model in [*self.draining, self.current]:
            if model is not None:
                await model.batcher.aclose()


# --- auth and limits ----------------------------------------------------------------------------------------
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


# --- the service ---------------------------------------------------------------------------------------------
class RewardService:
    """State of one server process: config, the model holder, DB thread, caches, metrics."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = ServerMetrics()
        # Scoring requests between arrival and response: the batcher keeps its window open while more
        # than one is in flight, even if the others have not reached its queue yet.
        self.scoring_in_flight = 0
        self.models = ModelHolder(config, self.metrics, lambda: self.scoring_in_flight)
        self.networks = [ipaddress.ip_network(n, strict=False) for n in config.trusted_networks]
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rm-db")
        self._token_cache: dict[str, tuple[float, Any]] = {}
        self._lookups: dict[str, asyncio.Future] = {}
        self._buckets = token_buckets(config.rate_limit_url, "rm")
        self._samples: deque[dict] = deque(maxlen=10_000)
        self._tasks: list[asyncio.Task] = []
        self.ready = False
        self.load_error: str | None = None
        self._sample_mod = int(round(1 / config.sample_rate)) if config.sample_rate > 0 else 0

    # DB work runs on one dedicated thread (one connection), closed on shutdown.
    async def db(self, fn: Callable, *args, **kwargs):
        def call():
            from django.db import close_old_connections

            close_old_connections()
            return fn(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._db, lambda: call())

    async def start(self) -> None:
        if self.config.model_dir:
            path = Path(self.config.model_dir)
            await self.models.load(model_dir=str(path), version=None, model_id=path.name)
        else:
            try:
                await self.reload()
            except ApiError as exc:  # nothing promoted yet: answer 503 and keep polling for one
                self.load_error = exc.message
                log.warning("%s Waiting for a promotion.", exc.message)
        self.ready = True
        if (
            self.config.project_id is not None
            and self.config.version is None
            and self.config.poll_seconds > 0
        ):
            self._every(self.config.poll_seconds, self.reload, "reward model reload failed")
        if self._sample_mod and self.config.project_id is not None:
            self._every(
                self.config.sample_flush_seconds, self._flush_samples, "could not store scored samples"
            )
        if self.config.token_check_seconds > 0:
            self._every(self.config.token_check_seconds, self.check_cached_tokens, "token check failed")

    def _every(self, seconds: float, job: Callable[[], Awaitable], failure: str) -> None:
        """Run ``job`` every ``seconds`` until ``stop``; a failure is logged and the next round tries again
        (the server keeps serving what it has: the current model, cached tokens, buffered samples)."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await job()
                except Exception:  # noqa: BLE001
                    log.warning(failure, exc_info=True)

        self._tasks.append(asyncio.get_running_loop().create_task(loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if self._sample_mod:
            with contextlib.suppress(Exception):
                await self._flush_samples()
        await self.models.aclose()

        def close_db():
            from django.db import connections

            connections.close_all()

        with contextlib.suppress(Exception):
            await asyncio.get_running_loop().run_in_executor(self._db, close_db)
        self._db.shutdown(wait=True)

    async def reload(self) -> bool:
        """Load the project's active (or pinned) version if it is not the one served. True if swapped."""
        from rewardsvc.selectors import reward_model_for_serving

        if self.config.project_id is None:
            return False
        found = await self.db(
            reward_model_for_serving, project_id=self.config.project_id, version=self.config.version
        )
        if found is None:
            raise ApiError(503, "no_model", f"Project {self.config.project_id} has no active reward model.")
        current = self.models.current
        if current is not None and current.reward_model_pk == found.pk:
            return False
        await self.models.load(
            model_dir=found.artifact_dir,
            version=found.version,
            model_id=found.model_id,
            pk=found.pk,
            mean=found.reward_mean,
            std=found.reward_std,
            max_length=found.max_length,
        )
        self.load_error = None
        return True

    # --- auth ---
    async def authenticate(self, request: Request, scope: str = "score") -> Principal:
        """Who is calling: a token (URL path or Authorization header) with ``scope``, or a trusted network.
        Checked before the body is read; ``charge`` applies the rate limit once the item count is known."""
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

    async def charge(self, principal: Principal, cost: int) -> None:
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
            wait = await self._buckets.atake(key, limit, cost)
            if wait > 0:
                raise ApiError(
                    429,
                    "throttled",
                    f"Rate limit of {limit} scored items per minute exceeded; retry in {wait:.1f}s.",
                    headers={"Retry-After": str(max(1, int(wait + 0.999)))},
                )

    # --- scoring ---
    def check_text(self, value: Any, where: str) -> None:
        if len(value) > self.config.max_chars_per_item:
            raise ApiError(
                413,
                "item_too_large",
                f"{where} has {len(value)} characters; the limit is {self.config.max_chars_per_item}.",
            )

    def check_count(self, n: int) -> None:
        if n > self.config.max_items_per_request:
            raise ApiError(
                413,
                "too_many_items",
                f"{n} items in one request; the limit is {self.config.max_items_per_request}.",
            )
        if n == 0:
            raise ApiError(400, "invalid", "No items to score.")

    async def score(
        self, model: LoadedModel, encode: Callable[[RewardScorer], list[EncodedInput]], chars: int
    ) -> tuple[list[float], list[EncodedInput]]:
        # Tokenising a few short inputs is cheaper than a thread hop; big requests go to a thread.
        from jinja2.exceptions import TemplateError

        try:
            if chars > 20_000:
                encoded = await asyncio.to_thread(encode, model.scorer)
            else:
                encoded = encode(model.scorer)
        except (TemplateError, ValueError, TypeError, KeyError) as exc:
            # the tokenizer's chat template refused the messages (say, roles that do not alternate)
            raise ApiError(400, "invalid", f"The input cannot be encoded for this model: {exc}") from exc
        self.metrics.queue_depth.set(model.batcher.queue_depth + len(encoded))
        try:
            rewards = await model.batcher.submit(encoded, [len(e) for e in encoded])
        except QueueFull as exc:
            raise ApiError(503, "overloaded", f"Server busy: {exc}.", headers={"Retry-After": "1"}) from exc
        except BatcherClosed as exc:  # cannot happen while a request holds the model; kept as a guard
            raise ApiError(503, "not_ready", "Model is being swapped; retry.") from exc
        finally:
            self.metrics.queue_depth.set(model.batcher.queue_depth)
        n_trunc = sum(e.truncated for e in encoded)
        if n_trunc:
            self.metrics.truncated.inc(n_trunc)
        return rewards, encoded

    def sample(self, model: LoadedModel, prompts: list, responses: list[str], rewards: list[float]) -> None:
        """Keep every scored pair of about ``sample_rate`` of the prompts (chosen by a hash of the prompt,
        so all responses to a kept prompt are kept and can be compared). Written off the hot path."""
        if not self._sample_mod or model.reward_model_pk is None:
            return
        for prompt, response, reward in zip(prompts, responses, rewards, strict=True):
            key = json.dumps(prompt, sort_keys=True) if isinstance(prompt, list) else prompt
            if int(hashlib.blake2b(key.encode(), digest_size=8).hexdigest(), 16) % self._sample_mod == 0:
                self._samples.append(
                    {
                        "prompt": prompt,
                        "response": response,
                        "reward": reward,
                        "reward_model_id": model.reward_model_pk,
                    }
                )

    async def _flush_samples(self) -> None:
        from rewardsvc.services import scored_samples_record

        rows = []
        while self._samples:
            rows.append(self._samples.popleft())
        if rows:
            await self.db(scored_samples_record, rows=rows)


# --- request parsing helpers ------------------------------------------------------------------------------
async def read_json(request: Request, service: RewardService) -> dict:
    limit = service.config.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"Request body over {limit} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise ApiError(413, "body_too_large", f"Request body over {limit} bytes.")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise ApiError(400, "parse_error", f"Body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid", "Body must be a JSON object.")
    return data


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(
            isinstance(m, dict)
            and isinstance(m.get("content"), str)
            and isinstance(m.get("role"), str)
            and m["role"]
            for m in value
        )
    )


def _check_model(model: LoadedModel, requested: Any, field_name: str = "model") -> None:
    if requested in (None, ""):
        return
    names = {model.model_id, model.scorer.name}
    if model.version is not None:
        names |= {str(model.version), f"v{model.version}"}
    if str(requested) not in names:
        raise ApiError(
            404,
            "model_not_loaded",
            f"Model {requested!r} is not served here; serving {model.model_id} (version {model.version}).",
            fields={field_name: [f"one of {sorted(names)}"]},
        )


def _want_normalize(model: LoadedModel, normalize: bool) -> None:
    if normalize and not model.scorer.can_normalize:
        raise ApiError(400, "cannot_normalize", "This reward model has no stored reward mean/std.")


# --- routes ---------------------------------------------------------------------------------------------
def _service(request: Request) -> RewardService:
    return request.app.state.service


def _timed(route: str, *, scoring: bool = True):
    def wrap(fn):
        async def endpoint(request: Request) -> Response:
            service = _service(request)
            started = time.perf_counter()
            service.scoring_in_flight += scoring
            try:
                response = await fn(request, service)
            except ApiError as exc:
                response = exc.response()
            finally:
                service.scoring_in_flight -= scoring
            service.metrics.requests.labels(route, str(response.status_code)).inc()
            service.metrics.latency.labels(route).observe(time.perf_counter() - started)
            return response

        endpoint.__name__ = fn.__name__
        return endpoint

    return wrap


@_timed("score")
async def score_route(request: Request, service: RewardService) -> Response:
    principal = await service.authenticate(request)
    data = await read_json(request, service)
    items = data.get("items")
    if not isinstance(items, list):
        raise ApiError(
            400, "invalid", "'items' must be a list.", fields={"items": ["This field is required."]}
        )
    service.check_count(len(items))
    prompts, responses, bad = [], [], {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            bad[f"items[{i}]"] = ["Must be an object with 'prompt' and 'response'."]
            continue
        prompt, response = item.get("prompt", ""), item.get("response")
        if not isinstance(response, str):
            bad[f"items[{i}].response"] = ["Must be a string."]
        if not (isinstance(prompt, str) or _is_messages(prompt)):
            bad[f"items[{i}].prompt"] = ["Must be a string or a list of {role, content} messages."]
        if bad:
            continue
        service.check_text(response, f"items[{i}].response")
        service.check_text(
            prompt if isinstance(prompt, str) else "".join(m["content"] for m in prompt), f"items[{i}].prompt"
        )
        prompts.append(prompt)
        responses.append(response)
    if bad:
        raise ApiError(400, "invalid", next(iter(bad)) + ": " + next(iter(bad.values()))[0], fields=bad)
    normalize = bool(data.get("normalize", False))
    await service.charge(principal, len(items))
    with service.models.acquire() as model:
        _check_model(model, data.get("model"))
        _want_normalize(model, normalize)
        chars = sum(len(r) for r in responses) + sum(len(p) if isinstance(p, str) else 0 for p in prompts)
        rewards, encoded = await service.score(
            model,
            lambda s: [s.encode(p, r) for p, r in zip(prompts, responses, strict=True)],
            chars,
        )
        service.metrics.items.labels("score").inc(len(rewards))
        body: dict[str, Any] = {
            "model": model.model_id,
            "model_version": model.version,
            "rewards": model.scorer.normalize(rewards) if normalize else rewards,
            "normalized": normalize,
            "truncated": [e.truncated for e in encoded],
        }
        if normalize:
            body["raw_rewards"] = rewards
        service.sample(model, prompts, responses, rewards)
    return JSONResponse(body)


def _split_query(query: str, prompt: str | None) -> tuple[str, str]:
    if prompt and query.startswith(prompt):
        return prompt, query[len(prompt) :]
    return "", query


@_timed("get_reward")
async def get_reward_route(request: Request, service: RewardService) -> Response:
    """OpenRLHF's remote reward model: ``{"query", "prompts", "labels"}`` -> ``{"rewards", "scores",
    "extra_logs"}``. ``query`` holds full texts (prompt + response); add ``?normalize=1`` to the URL for
    normalised rewards."""
    principal = await service.authenticate(request)
    data = await read_json(request, service)
    queries = data.get("query")
    if isinstance(queries, str):
        queries = [queries]
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise ApiError(
            400, "invalid", "'query' must be a list of strings.", fields={"query": ["A list of strings."]}
        )
    prompts = data.get("prompts") or []
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise ApiError(
            400, "invalid", "'prompts' must be a list of strings.", fields={"prompts": ["A list of strings."]}
        )
    if prompts and len(prompts) != len(queries):
        message = (
            f"'prompts' has {len(prompts)} items but 'query' has {len(queries)}; send one prompt per query."
        )
        raise ApiError(400, "invalid", message, fields={"prompts": [message]})
    service.check_count(len(queries))
    for i, q in enumerate(queries):
        service.check_text(q, f"query[{i}]")
    normalize = request.query_params.get("normalize", "").lower() in ("1", "true", "yes")
    await service.charge(principal, len(queries))
    with service.models.acquire() as model:
        _want_normalize(model, normalize)
        pairs = [_split_query(q, prompts[i] if prompts else None) for i, q in enumerate(queries)]

        def encode(s: RewardScorer) -> list[EncodedInput]:
            # With its prompt, a query is split and encoded as training did (prompt ids + response ids);
            # without one, the full text is scored.
            return [s.encode(p, r) if p else s.encode_text(r) for p, r in pairs]

        rewards, encoded = await service.score(model, encode, sum(len(q) for q in queries))
        service.metrics.items.labels("get_reward").inc(len(rewards))
        out = model.scorer.normalize(rewards) if normalize else rewards
        service.sample(model, [p for p, _ in pairs], [r for _, r in pairs], rewards)
    return JSONResponse(
        {
            "rewards": out,
            "scores": out,
            "extra_logs": {"truncated": [float(e.truncated) for e in encoded]},
        }
    )


async def _classify_core(
    request: Request, service: RewardService, principal: Principal, data: dict
) -> tuple[LoadedModel, list, int]:
    inputs = data.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
        raise ApiError(
            400, "invalid", "'input' must be a string or a list of strings.", fields={"input": ["Invalid."]}
        )
    service.check_count(len(inputs))
    for i, text in enumerate(inputs):
        service.check_text(text, f"input[{i}]")
    use_activation = data.get("use_activation")
    if use_activation is None:
        use_activation = data.get("activation", True)
    await service.charge(principal, len(inputs))
    with service.models.acquire() as model:
        _check_model(model, data.get("model"))
        rewards, encoded = await service.score(
            model, lambda s: [s.encode_text(t) for t in inputs], sum(len(t) for t in inputs)
        )
    values = [sigmoid(r) if use_activation else r for r in rewards]
    return model, [(v, e) for v, e in zip(values, encoded, strict=True)], sum(len(e) for e in encoded)


def _vllm_envelope(prefix: str, model: LoadedModel, data: list, tokens: int) -> dict:
    return {
        "id": f"{prefix}-{uuid.uuid4().hex}",
        "object": "list",
        "created": int(time.time()),
        "model": model.model_id,
        "data": data,
        "usage": {
            "prompt_tokens": tokens,
            "total_tokens": tokens,
            "completion_tokens": 0,
            "prompt_tokens_details": None,
        },
    }


@_timed("classify")
async def classify_route(request: Request, service: RewardService) -> Response:
    """vLLM's ``/classify``: ``probs`` holds sigmoid(reward), or the raw reward with ``use_activation``
    false. One class: the reward."""
    principal = await service.authenticate(request)
    data = await read_json(request, service)
    model, results, tokens = await _classify_core(request, service, principal, data)
    label = model.scorer.labels[0]
    rows = [
        {"index": i, "label": label, "probs": [value], "num_classes": 1}
        for i, (value, _) in enumerate(results)
    ]
    service.metrics.items.labels("classify").inc(len(rows))
    return JSONResponse(_vllm_envelope("classify", model, rows, tokens))


@_timed("pooling")
async def pooling_route(request: Request, service: RewardService) -> Response:
    """vLLM's ``/pooling`` with ``task`` classify (the only pooling task a reward model answers here)."""
    principal = await service.authenticate(request)
    data = await read_json(request, service)
    task = data.get("task", "classify")
    if task != "classify":
        raise ApiError(400, "unsupported_task", f"Only task 'classify' is served, not {task!r}.")
    model, results, tokens = await _classify_core(request, service, principal, data)
    rows = [{"index": i, "object": "pooling", "data": [value]} for i, (value, _) in enumerate(results)]
    service.metrics.items.labels("pooling").inc(len(rows))
    return JSONResponse(_vllm_envelope("pool", model, rows, tokens))


async def health_route(request: Request) -> Response:
    service = _service(request)
    model = service.models.current
    if model is None:
        return JSONResponse({"status": "loading", "error": service.load_error}, status_code=503)
    return JSONResponse({"status": "ok", "model": model.model_id, "model_version": model.version})


@_timed("models", scoring=False)
async def models_route(request: Request, service: RewardService) -> Response:
    await service.authenticate(request)
    rows = []
    for model in [service.models.current, *service.models.draining]:
        if model is None:
            continue
        rows.append(
            {
                "id": model.model_id,
                "object": "model",
                "created": int(model.loaded_at),
                "owned_by": "preflab",
                "version": model.version,
                "reward_model_id": model.reward_model_pk,
                "max_model_len": model.scorer.max_length,
                "serving": model is service.models.current,
                "normalization": {"mean": model.scorer.reward_mean, "std": model.scorer.reward_std},
            }
        )
    return JSONResponse({"object": "list", "data": rows})


@_timed("reload", scoring=False)
async def reload_route(request: Request, service: RewardService) -> Response:
    principal = await service.authenticate(request)
    if not principal.can_reload:
        where = f" of project {service.config.project_id}" if service.config.project_id is not None else ""
        raise ApiError(403, "permission_denied", f"Reloading needs an engineer or admin{where}.")
    swapped = await service.reload()
    model = service.models.current
    return JSONResponse({"swapped": swapped, "model": model.model_id, "model_version": model.version})


async def metrics_route(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    service = _service(request)
    model = service.models.current
    if model is not None:
        service.metrics.queue_depth.set(model.batcher.queue_depth)
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


SCORING_ROUTES = [
    Route("/v1/reward/score", score_route, methods=["POST"]),
    Route("/get_reward", get_reward_route, methods=["POST"]),
    Route("/classify", classify_route, methods=["POST"]),
    Route("/pooling", pooling_route, methods=["POST"]),
    Route("/v1/models", models_route, methods=["GET"]),
    Route("/v1/admin/reload", reload_route, methods=["POST"]),
]


def create_app(config: ServerConfig | None = None) -> Starlette:
    """Build the ASGI app. The model loads at startup (lifespan), before the server accepts requests."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup(set_prefix=False)
    config = config or ServerConfig.from_env()
    if config.project_id is None and not config.model_dir:
        raise RuntimeError(
            "Set PREFLAB_RM_PROJECT (or PREFLAB_RM_MODEL_DIR) to say which reward model to serve."
        )
    torch_threads = config.num_threads or os.cpu_count() or 1
    import torch

    torch.set_num_threads(torch_threads)
    with contextlib.suppress(RuntimeError):  # only settable before any parallel work
        torch.set_num_interop_threads(1)
    logging.getLogger("uvicorn.access").addFilter(RedactTokenFilter())
    service = RewardService(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = Starlette(
        routes=[
            Route("/health", health_route, methods=["GET"]),
            Route("/metrics", metrics_route, methods=["GET"]),
            *SCORING_ROUTES,
            Mount("/t/{token}", routes=SCORING_ROUTES),
        ],
        lifespan=lifespan,
    )
    app.state.service = service
    return app


class _LazyApp:
    """``uvicorn rewardsvc.server:app``: the app is built from the environment on the first ASGI call, so
    importing this module loads nothing."""

    def __init__(self) -> None:
        self._app: Starlette | None = None
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = create_app()
        await self._app(scope, receive, send)


app = _LazyApp()

__all__ = ["ServerConfig", "create_app", "app"]
