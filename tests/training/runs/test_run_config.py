"""A reward run's config: stored as JSON on the run, read back the same, unknown fields refused."""

from __future__ import annotations

import pytest

from training.rewardmodels.trainer import RewardRunConfig


def test_config_round_trip_and_unknown_fields():
    cfg = RewardRunConfig(learning_rate=1e-4, use_lora=True)
    assert RewardRunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        RewardRunConfig.from_dict({"lr": 1})
