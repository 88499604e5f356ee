"""Pairing strategies as pure functions."""

from __future__ import annotations

import random

import pytest

from annotation.importing.pairing import pairs_adjacent, pairs_all, pairs_for_strategy, pairs_random_k


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
