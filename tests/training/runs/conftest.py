"""Fixtures for reward-model run tests: a project and a small ready snapshot on disk."""

from __future__ import annotations

import pytest

from tests.factories import make_project
from tests.training.runs.snapshot_files import synthetic_pairs, write_snapshot

TINY_CONFIG = {
    "learning_rate": 1e-3,
    "num_train_epochs": 1,
    "per_device_train_batch_size": 4,
    "max_length": 64,
    "logging_steps": 1,
    "torch_threads": 1,
}


@pytest.fixture
def project(db):
    return make_project()


@pytest.fixture
def tiny_snapshot(project):
    return write_snapshot(
        project,
        {
            "train": synthetic_pairs(16, seed=1, long_prompt_every=5),
            "validation": synthetic_pairs(4, seed=2),
            "test": synthetic_pairs(12, seed=3),
        },
    )
