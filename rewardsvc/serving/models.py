"""The served reward model and its hot swap: requests hold the model they started with, a swap loads the new
one beside it and the old one drains, so a promotion never fails a request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rewardsvc.batching import MicroBatcher
from rewardsvc.scoring import RewardScorer
from rewardsvc.serving.config import ServerConfig
from rewardsvc.serving.errors import ApiError
from rewardsvc.serving.metrics import ServerMetrics

log = logging.getLogger("rewardsvc.server")


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
            scorer.forward_scored,  # (reward, uncertainty) per input
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
