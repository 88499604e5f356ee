"""One reward-server process's state: its config, the served model (``models``), token auth, rate limits,
sample log and metrics, the one database thread, and the background loops (registry poll, token check,
sample flush). Routes call ``authenticate`` -> ``charge`` -> ``score`` -> ``sample``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from starlette.requests import Request

from rewardsvc.batching import BatcherClosed, QueueFull
from rewardsvc.scoring import EncodedInput, RewardList, RewardScorer
from rewardsvc.serving.auth import Principal, TokenAuth
from rewardsvc.serving.config import ServerConfig
from rewardsvc.serving.errors import ApiError
from rewardsvc.serving.metrics import ServerMetrics
from rewardsvc.serving.models import LoadedModel, ModelHolder
from rewardsvc.serving.ratelimit import RateLimiter
from rewardsvc.serving.samples import SampleLog

log = logging.getLogger("rewardsvc.server")


class RewardService:
    """State of one server process: config, the model holder, DB thread, caches, metrics."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = ServerMetrics()
        # Scoring requests between arrival and response: the batcher keeps its window open while more
        # than one is in flight, even if the others have not reached its queue yet.
        self.scoring_in_flight = 0
        self.models = ModelHolder(config, self.metrics, lambda: self.scoring_in_flight)
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rm-db")
        self.auth = TokenAuth(config, self.db)
        self.limiter = RateLimiter(config)
        self._buckets = self.limiter.buckets
        self.samples = SampleLog(config, self.db)
        self._tasks: list[asyncio.Task] = []
        self.ready = False
        self.load_error: str | None = None

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
        if self.samples.enabled and self.config.project_id is not None:
            self._every(
                self.config.sample_flush_seconds, self.samples.flush, "could not store scored samples"
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
        if self.samples.enabled:
            with contextlib.suppress(Exception):
                await self.samples.flush()
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

    # --- access ---
    async def authenticate(self, request: Request, scope: str = "score") -> Principal:
        return await self.auth.authenticate(request, scope)

    async def check_cached_tokens(self) -> int:
        return await self.auth.check_cached_tokens()

    async def charge(self, principal: Principal, cost: int) -> None:
        await self.limiter.charge(principal, cost)

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
    ) -> tuple[RewardList, list[EncodedInput]]:
        """Encode, queue for the micro-batcher and wait: the rewards in input order (an ensemble's member
        mean, with the members' spread as ``rewards.uncertainty``) and the encoded inputs."""
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
            scored = await model.batcher.submit(encoded, [len(e) for e in encoded])
        except QueueFull as exc:
            raise ApiError(503, "overloaded", f"Server busy: {exc}.", headers={"Retry-After": "1"}) from exc
        except BatcherClosed as exc:  # cannot happen while a request holds the model; kept as a guard
            raise ApiError(503, "not_ready", "Model is being swapped; retry.") from exc
        finally:
            self.metrics.queue_depth.set(model.batcher.queue_depth)
        n_trunc = sum(e.truncated for e in encoded)
        if n_trunc:
            self.metrics.truncated.inc(n_trunc)
        ensemble = model.scorer.ensemble_size > 1
        return RewardList([r for r, _ in scored], [u for _, u in scored] if ensemble else None), encoded

    def sample(self, model: LoadedModel, prompts: list, responses: list[str], rewards: list[float]) -> None:
        self.samples.sample(model, prompts, responses, rewards)
