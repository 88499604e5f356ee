"""Pairing strategies: which candidate pairs of one prompt become comparison tasks (pure functions).

Each returns index pairs ``(i, j)`` with ``i < j`` into a prompt's candidate list; the A/B order is decided
later by the caller, so a strategy never biases position.
"""

from __future__ import annotations

import itertools
import random

from annotation.models import PairingStrategy


def pairs_all(n: int) -> list[tuple[int, int]]:
    """Every unordered pair: n*(n-1)/2 of them."""
    return list(itertools.combinations(range(n), 2))


def pairs_random_k(n: int, k: int, rng: random.Random) -> list[tuple[int, int]]:
    """k distinct pairs drawn uniformly (all pairs when there are fewer than k)."""
    every = pairs_all(n)
    if k >= len(every):
        return every
    return sorted(rng.sample(every, k))


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
