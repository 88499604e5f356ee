"""Pairing strategies as pure functions."""

from __future__ import annotations

import itertools
import random
import tracemalloc

import pytest

from annotation.importing.pairing import (
    pair_at,
    pair_count,
    pairs_adjacent,
    pairs_all,
    pairs_for_strategy,
    pairs_random_k,
)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8])
def test_all_pairs_count_is_n_choose_2(n):
    pairs = pairs_all(n)
    assert len(pairs) == n * (n - 1) // 2
    assert len(set(pairs)) == len(pairs)
    assert all(i < j for i, j in pairs)


def test_random_k_draws_k_distinct_pairs_and_is_seeded():
    pairs = pairs_random_k(6, 4, random.Random(1))
    assert len(pairs) == 4 and len(set(pairs)) == 4
    assert all(0 <= i < j < 6 for i, j in pairs)
    assert pairs == pairs_random_k(6, 4, random.Random(1))
    assert pairs_random_k(3, 10, random.Random(0)) == [(0, 1), (0, 2), (1, 2)]  # fewer than k: all


def test_adjacent_after_shuffle_is_a_chain_covering_every_candidate():
    pairs = pairs_adjacent(7, random.Random(3))
    assert len(pairs) == 6
    assert {i for p in pairs for i in p} == set(range(7))
    degree = [sum(i in p for p in pairs) for i in range(7)]
    assert sorted(degree) == [1, 1, 2, 2, 2, 2, 2]  # a path: two ends, the rest in the middle
    assert pairs != pairs_adjacent(7, random.Random(4)) or pairs == pairs_adjacent(7, random.Random(3))


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="unknown pairing strategy"):
        pairs_for_strategy("round_robin", 3, k=1, rng=random.Random(0))


@pytest.mark.parametrize("n", [2, 3, 4, 7, 30])
def test_pair_at_is_the_index_th_combination(n):
    assert [pair_at(n, m) for m in range(n * (n - 1) // 2)] == list(itertools.combinations(range(n), 2))


@pytest.mark.parametrize(("n", "k", "seed"), [(6, 4, 1), (10, 3, 0), (40, 25, 7)])
def test_random_k_draws_what_sampling_the_full_list_drew(n, k, seed):
    """Same seed, same pairs as before the change (imports stay reproducible), without the list."""
    assert pairs_random_k(n, k, random.Random(seed)) == sorted(random.Random(seed).sample(pairs_all(n), k))


def test_random_k_does_not_list_every_pair():
    """6,000 candidates have 18 million pairs (1.8 GB as a list); drawing 3 must cost next to nothing."""
    tracemalloc.start()
    try:
        pairs = pairs_random_k(6000, 3, random.Random(0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(set(pairs)) == 3 and all(0 <= i < j < 6000 for i, j in pairs)
    assert peak < 1_000_000, peak


@pytest.mark.parametrize(("strategy", "expected"), [("all_pairs", 45), ("random_k", 3), ("adjacent", 9)])
def test_pair_count_matches_the_strategy(strategy, expected):
    assert (
        pair_count(strategy, 10, k=3)
        == expected
        == len(pairs_for_strategy(strategy, 10, k=3, rng=random.Random(0)))
    )
