"""Dynamic micro-batching across concurrent requests (pure asyncio + one worker thread for forwards).

Requests put encoded inputs on a queue. A collector task takes whatever is waiting, keeps collecting for
``window_ms`` or until the token budget is reached, sorts the inputs by length and splits them into
length buckets (``plan_batches``: contiguous runs of the sorted inputs that minimise padded tokens plus a
per-forward overhead), then runs one forward per bucket on a single worker thread. On CPU, padding is
what makes large mixed-length batches slower than batch 1, so the bucketing is what makes batching pay.
While a forward runs, the next requests queue up and form the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BatchingConfig:
    """How requests are merged into forwards."""

    window_ms: float = 5.0
    """How long to keep collecting after the first waiting input (0: take only what is already queued).
    Skipped while traffic is a single caller at a time and no other caller is in flight (see
    ``MicroBatcher._collect``)."""
    max_batch_items: int = 64
    """Most inputs in one forward."""
    max_batch_tokens: int = 8192
    """Token budget of one forward: items x longest input (padded tokens). Collection stops at it too."""
    forward_overhead_tokens: int = 48
    """The fixed cost of a forward, in token-equivalents, used to decide where to cut length buckets."""
    max_queue_items: int = 4096
    """Inputs allowed to wait; beyond it submit() raises ``QueueFull`` (the server answers 503)."""


class QueueFull(Exception):
    pass


class BatcherClosed(Exception):
    pass


def plan_batches(
    lengths: Sequence[int],
    *,
    max_batch_items: int,
    max_batch_tokens: int,
    overhead_tokens: int = 0,
) -> list[list[int]]:
    """Split inputs into forwards: sort by length, then cut the sorted run into contiguous buckets with the
    least total cost ``sum(overhead + n_items * longest)``, each within the item and token limits.

    Returns lists of indices into ``lengths`` (shortest bucket first). Exact dynamic programme, O(n^2) for
    the few dozen inputs of a micro-batch.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    if n == 0:
        return []
    best = [0.0] + [float("inf")] * n  # best[j]: cost of the first j sorted inputs
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]
        for i in range(j - 1, -1, -1):  # bucket = sorted[i:j]
            size = j - i
            if size > max_batch_items or (size > 1 and size * longest > max_batch_tokens):
                break
            cost = best[i] + overhead_tokens + size * longest
            if cost < best[j]:
                best[j], cut[j] = cost, i
    buckets = []
    j = n
    while j > 0:
        i = cut[j]
        buckets.append([order[k] for k in range(i, j)])
        j = i
    return buckets[::-1]


@dataclass
class _Pending:
    item: Any
    length: int
    future: asyncio.Future
    call: int = 0
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """Counters a server exports as metrics (updated on the event loop)."""

    forwards: int = 0
    items: int = 0
    collections: int = 0
    max_items_in_forward: int = 0
    window_skips: int = 0
    """Collections dispatched at once because the last batch held a single caller, nothing waits and no
    other caller is in flight."""


class MicroBatcher:
    """Merges inputs from concurrent ``submit`` calls into padded forwards run by ``forward_fn`` on one
    worker thread. ``forward_fn(items) -> list[float]`` gets a list of items of one bucket.

    ``callers_in_flight`` says how many callers are being served right now, counting those still on their
    way to ``submit`` (a server counts requests from arrival to response); by default the batcher counts
    its own unfinished ``submit`` calls."""

    def __init__(
        self,
        forward_fn: Callable[[list[Any]], list[float]],
        config: BatchingConfig | None = None,
        *,
        on_forward: Callable[[int, int, float], None] | None = None,
        thread_initializer: Callable[[], None] | None = None,
        callers_in_flight: Callable[[], int] | None = None,
    ) -> None:
        self.forward_fn = forward_fn
        self.config = config or BatchingConfig()
        self.on_forward = on_forward  # (items, padded_tokens, seconds)
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="rm-forward", initializer=thread_initializer
        )
        self._closed = False
        self._queued_items = 0
        self._calls = 0
        self._open_calls = 0  # submit() calls not yet answered
        self._solo = True  # the last batch held one caller's inputs (or there was none yet)
        self._callers_in_flight = callers_in_flight or (lambda: self._open_calls)

    @property
    def queue_depth(self) -> int:
        return self._queued_items

    def start(self) -> None:
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def submit(self, items: Sequence[Any], lengths: Sequence[int]) -> list[float]:
        """Queue inputs (with their token lengths) and wait for their scores, in order."""
        if self._closed:
            raise BatcherClosed("batcher is closed")
        self.start()
        if self._queued_items + len(items) > self.config.max_queue_items:
            raise QueueFull(f"more than {self.config.max_queue_items} inputs waiting")
        loop = asyncio.get_running_loop()
        self._calls += 1
        pending = [
            _Pending(item, length, loop.create_future(), self._calls)
            for item, length in zip(items, lengths, strict=True)
        ]
        self._queued_items += len(pending)
        self._open_calls += 1
        try:
            for p in pending:
                self._queue.put_nowait(p)
            return list(await asyncio.gather(*(p.future for p in pending)))
        finally:
            self._open_calls -= 1

    async def _collect(self) -> list[_Pending]:
        """Take the waiting inputs and keep collecting for the window. The window is skipped when the last
        batch held a single caller's inputs, nothing else waits and no other caller is in flight: with one
        client at a time, waiting only adds latency (nobody else will come).

        "In flight" matters on a busy machine: concurrent requests then reach ``submit`` one by one
        (staggered by parsing, auth, the database thread, a starved event loop), each after the previous
        forward ended, so "nothing waits" held for every one of them and each got a forward of its own;
        a loaded server stopped batching exactly when it most needed to. Another caller in flight means
        more inputs are coming, so the window applies."""
        cfg = self.config
        first = await self._queue.get()
        batch = [first]
        longest = first.length
        solo = self._solo
        deadline = time.perf_counter() + cfg.window_ms / 1000.0

        def full() -> bool:
            return len(batch) >= cfg.max_batch_items * 4 or len(batch) * longest >= cfg.max_batch_tokens * 4

        while not full():
            try:
                nxt = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                if solo and all(p.call == first.call for p in batch) and self._callers_in_flight() <= 1:
                    self.stats.window_skips += 1
                    break
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                # asyncio.wait (not wait_for) so an input taken at the moment of the timeout is never lost.
                getter = asyncio.ensure_future(self._queue.get())
                await asyncio.wait({getter}, timeout=remaining)
                if not getter.done():
                    getter.cancel()
                    await asyncio.wait({getter})
                if getter.cancelled():
                    break
                nxt = getter.result()
            batch.append(nxt)
            longest = max(longest, nxt.length)
        self._solo = len({p.call for p in batch}) == 1
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            self.stats.collections += 1
            buckets = plan_batches(
                [p.length for p in batch],
                max_batch_items=self.config.max_batch_items,
                max_batch_tokens=self.config.max_batch_tokens,
                overhead_tokens=self.config.forward_overhead_tokens,
            )
            for bucket in buckets:
                group = [batch[i] for i in bucket]
                live = [p for p in group if not p.future.done()]
                self._queued_items -= len(group) - len(live)
                if not live:
                    continue
                started = time.perf_counter()
                try:
                    scores = await loop.run_in_executor(
                        self._executor, self.forward_fn, [p.item for p in live]
                    )
                except Exception as exc:  # a bad batch fails its own requests, not the server
                    for p in live:
                        if not p.future.done():
                            p.future.set_exception(exc)
                else:
                    for p, score in zip(live, scores, strict=True):
                        if not p.future.done():
                            p.future.set_result(score)
                finally:
                    self._queued_items -= len(live)
                seconds = time.perf_counter() - started
                self.stats.forwards += 1
                self.stats.items += len(live)
                self.stats.max_items_in_forward = max(self.stats.max_items_in_forward, len(live))
                if self.on_forward is not None:
                    self.on_forward(len(live), len(live) * max(p.length for p in live), seconds)

    async def aclose(self) -> None:
        """Stop taking inputs, finish what is queued, then stop the collector and the worker thread."""
        self._closed = True
        if self._task is not None:
            while self._queued_items > 0:
                await asyncio.sleep(0.005)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)
