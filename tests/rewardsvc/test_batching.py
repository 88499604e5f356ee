"""Micro-batcher: merges concurrent submits, buckets by length, isolates failures, drains on close."""

from __future__ import annotations

import asyncio
import threading

import pytest

from rewardsvc.batching import BatchingConfig, MicroBatcher, plan_batches


def test_plan_batches_sorts_and_cuts_by_length():
    lengths = [10, 200, 12, 11, 210, 205]
    buckets = plan_batches(lengths, max_batch_items=8, max_batch_tokens=10_000, overhead_tokens=20)
    assert buckets == [[0, 3, 2], [1, 5, 4]]  # short ones together, long ones together
    assert sorted(i for b in buckets for i in b) == list(range(6))


def test_plan_batches_respects_item_and_token_limits():
    lengths = list(range(1, 41))
    buckets = plan_batches(lengths, max_batch_items=8, max_batch_tokens=100, overhead_tokens=1000)
    assert all(len(b) <= 8 for b in buckets)
    assert all(len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 100 for b in buckets)
    # A large per-forward overhead packs as much as the limits allow.
    assert len(buckets) < 15
    # No overhead: padding alone decides, so equal lengths share and different ones need not.
    assert plan_batches([5, 5, 5], max_batch_items=8, max_batch_tokens=100) in ([[0, 1, 2]], [[0], [1], [2]])
    assert plan_batches([], max_batch_items=8, max_batch_tokens=100) == []


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_submits_are_merged_into_few_forwards():
    calls: list[int] = []
    threads: set[str] = set()

    def forward(items):
        calls.append(len(items))
        threads.add(threading.current_thread().name)
        return [float(x) * 2 for x in items]

    async def main():
        batcher = MicroBatcher(
            forward, BatchingConfig(window_ms=50, max_batch_items=64, forward_overhead_tokens=1000)
        )
        results = await asyncio.gather(*(batcher.submit([i], [10]) for i in range(20)))
        await batcher.aclose()
        return results, batcher.stats

    results, stats = _run(main())
    assert results == [[i * 2.0] for i in range(20)]
    assert sum(calls) == 20 and len(calls) < 20 and max(calls) > 1
    assert stats.max_items_in_forward == max(calls)
    assert len(threads) == 1  # one worker thread runs every forward


def test_window_zero_takes_only_what_is_queued():
    calls: list[int] = []

    async def main():
        batcher = MicroBatcher(
            lambda items: calls.append(len(items)) or [0.0] * len(items), BatchingConfig(window_ms=0)
        )
        for i in range(3):  # sequential: nothing else is waiting, so one forward each
            await batcher.submit([i], [5])
        await batcher.aclose()

    _run(main())
    assert calls == [1, 1, 1]


def test_a_failing_forward_fails_only_its_own_requests():
    def forward(items):
        if "bad" in items:
            raise RuntimeError("boom")
        return [1.0] * len(items)

    async def main():
        batcher = MicroBatcher(forward, BatchingConfig(window_ms=0, forward_overhead_tokens=0))
        with pytest.raises(RuntimeError):
            await batcher.submit(["bad"], [3])
        ok = await batcher.submit(["good"], [3])
        await batcher.aclose()
        return ok

    assert _run(main()) == [1.0]


def test_one_caller_at_a_time_skips_the_window_and_concurrent_callers_still_merge():
    calls: list[int] = []

    def forward(items):
        calls.append(len(items))
        return [float(x) for x in items]

    async def main():
        # A long window: a sequential client that waited it would take >= 10 x 0.5 s.
        batcher = MicroBatcher(forward, BatchingConfig(window_ms=500, forward_overhead_tokens=1000))
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(10):
            assert await batcher.submit([i, i], [5, 5]) == [float(i), float(i)]
        sequential_s = loop.time() - started
        skips_after_sequential = batcher.stats.window_skips
        # Now many callers at once: they are queued together and merged into few forwards.
        results = await asyncio.gather(*(batcher.submit([i], [5]) for i in range(20)))
        await batcher.aclose()
        return sequential_s, skips_after_sequential, results, batcher.stats

    sequential_s, skips, results, stats = _run(main())
    assert skips == 10 and sequential_s < 2.5, (skips, sequential_s)
    assert calls[:10] == [2] * 10  # one caller's two inputs go together, without waiting
    assert results == [[float(i)] for i in range(20)]
    assert sum(calls[10:]) == 20 and max(calls[10:]) > 1


def test_staggered_callers_still_merge_while_others_are_in_flight():
    """On a busy server concurrent requests reach the batcher one by one, each after the previous forward
    ended (auth, parsing and the database thread stagger them). Nothing waits in the queue at any moment,
    so "a lone caller" looked true for every one of them and each got its own forward. With other callers
    in flight (the server counts requests from arrival to response) the window stays open and they merge.

    No timing: the window is far longer than the test, and the collection ends because it is full
    (``max_batch_items=1`` makes four inputs a full collection)."""
    forwards: list[int] = []

    def forward(items):
        forwards.append(len(items))
        return [float(x) for x in items]

    async def main():
        in_flight = {"n": 4}  # four requests have arrived at the server; they reach submit() one by one
        batcher = MicroBatcher(
            forward,
            BatchingConfig(window_ms=60_000, max_batch_items=1, forward_overhead_tokens=0),
            callers_in_flight=lambda: in_flight["n"],
        )
        first = asyncio.ensure_future(batcher.submit([0], [5]))
        await asyncio.sleep(0)  # the collector takes the first input with nothing else queued
        await asyncio.sleep(0)
        rest = []
        for i in range(1, 4):
            rest.append(asyncio.ensure_future(batcher.submit([i], [5])))
            await asyncio.sleep(0)
        results = await asyncio.gather(first, *rest)
        in_flight["n"] = 1
        stats = batcher.stats
        await batcher.aclose()
        return results, stats

    results, stats = _run(main())
    assert results == [[0.0], [1.0], [2.0], [3.0]]
    assert stats.window_skips == 0
    assert stats.collections == 1  # one collection held all four callers
