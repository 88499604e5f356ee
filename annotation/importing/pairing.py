"""Pairing strategies: which candidate pairs of one prompt become comparison tasks (pure functions).

Each returns index pairs ``(i, j)`` with ``i < j`` into a prompt's candidate list; the A/B order is decided
later by the caller, so a strategy never biases position.
"""

from __future__ import annotations

import itertools
import math
import random

from annotation.models import PairingStrategy


def pairs_all(n: int) -> list[tuple[int, int]]:
    """Every unordered pair: n*(n-1)/2 of them."""
    return list(itertools.combinations(range(n), 2))


def pair_count(strategy: str, n: int, *, k: int) -> int:
    """How many pairs ``pairs_for_strategy`` returns for n candidates, without listing them."""
    every = n * (n - 1) // 2
    if strategy == PairingStrategy.ALL_PAIRS:
        return every
    if strategy == PairingStrategy.RANDOM_K:
        return min(k, every)
    if strategy == PairingStrategy.ADJACENT:
        return max(0, n - 1)
    raise ValueError(f"unknown pairing strategy {strategy!r}; use one of {', '.join(PairingStrategy.values)}")


def pair_at(n: int, index: int) -> tuple[int, int]:
    """The ``index``-th pair of ``itertools.combinations(range(n), 2)``, computed, not listed.

    Lexicographic order is colexicographic order reversed on mirrored indices: the pair (i, j) is the
    colex pair (n-1-j, n-1-i), whose colex rank is b*(b-1)/2 + a for a < b."""
    c = n * (n - 1) // 2 - 1 - index
    b = (1 + math.isqrt(1 + 8 * c)) // 2
    a = c - b * (b - 1) // 2
    return n - 1 - b, n - 1 - a


def pairs_random_k(n: int, k: int, rng: random.Random) -> list[tuple[int, int]]:
    """k distinct pairs drawn uniformly (all pairs when there are fewer than k). The k pair indices are
    sampled from the range of n*(n-1)/2 and turned into pairs, so the work is O(k), not O(n^2): the same
    pairs ``rng.sample(pairs_all(n), k)`` would draw, without building that list."""
    every = n * (n - 1) // 2
    if k >= every:
        return pairs_all(n)
    return sorted(pair_at(n, index) for index in rng.sample(range(every), k))


def pairs_adjacent(n: int, rng: random.Random) -> list[tuple[int, int]]:
    """Shuffle the candidates and compare each with the next: n-1 pairs forming one chain, so every
    candidate is compared (the comparison graph stays connected for Bradley-Terry) at linear cost."""
    order = list(range(n))
    rng.shuffle(order)
    return [tuple(sorted(p)) for p in itertools.pairwise(order)]


def pairs_for_strategy(strategy: str, n: int, *, k: int, rng: random.Random) -> list[tuple[int, int]]:
    if strategy == PairingStrategy.ALL_PAIRS:
        return pairs_all(n)
    if strategy == PairingStrategy.RANDOM_K:
        return pairs_random_k(n, k, rng)
    if strategy == PairingStrategy.ADJACENT:
        return pairs_adjacent(n, rng)
    raise ValueError(f"unknown pairing strategy {strategy!r}; use one of {', '.join(PairingStrategy.values)}")
