"""What every TRL run shares: one set of local-run arguments for the reward, SFT and GRPO/RLOO configs, and
a model directory that appears whole or not at all."""

from __future__ import annotations

import pytest

from training.trl_runs import artifact_dir_build, local_run_args


def test_reward_sft_and_grpo_configs_share_the_local_run_arguments(tmp_path):
    from training.policy.grpo import GroupRLConfig, build_trl_config
    from training.policy.sft import SFTRunConfig, build_sft_config
    from training.rewardmodels.trainer import RewardRunConfig, build_reward_config

    shared = local_run_args(seed=7)
    configs = [
        build_reward_config(RewardRunConfig(), output_dir=str(tmp_path), seed=7),
        build_sft_config(SFTRunConfig(), output_dir=str(tmp_path), seed=7),
        build_trl_config("grpo", GroupRLConfig(), output_dir=str(tmp_path), seed=7),
        build_trl_config("rloo", GroupRLConfig(), output_dir=str(tmp_path), seed=7),
    ]
    normalised = {"report_to": []}  # TrainingArguments turns "none" into an empty list of loggers
    for config in configs:
        for name, value in shared.items():
            got = getattr(config, name)
            assert getattr(got, "value", got) == normalised.get(name, value), (type(config).__name__, name)


def test_bf16_follows_the_device():
    import torch

    expected = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    assert local_run_args(seed=0)["bf16"] is expected
    assert local_run_args(seed=0)["use_cpu"] is (not torch.cuda.is_available())


def test_a_finished_artifact_dir_is_renamed_into_place(tmp_path):
    root = tmp_path / "runs" / "run-1"
    with artifact_dir_build(root) as tmp:
        (tmp / "model.bin").write_bytes(b"weights")
        assert not root.exists()
    assert (root / "model.bin").read_bytes() == b"weights"
    assert [p.name for p in root.parent.iterdir()] == ["run-1"]


def test_a_failed_build_leaves_nothing_and_an_existing_model_is_kept(tmp_path):
    models = tmp_path / "models"
    root = models / "run-2"
    with pytest.raises(RuntimeError), artifact_dir_build(root) as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("cancelled")
    assert list(models.iterdir()) == []
    root.mkdir(parents=True)
    (root / "model.bin").write_bytes(b"registered")
    with pytest.raises(OSError), artifact_dir_build(root) as tmp:
        (tmp / "model.bin").write_bytes(b"new")
    assert (root / "model.bin").read_bytes() == b"registered"
    with artifact_dir_build(root, replace=True) as tmp:  # a policy run executed again replaces its model
        (tmp / "model.bin").write_bytes(b"new")
    assert (root / "model.bin").read_bytes() == b"new" and [p.name for p in models.iterdir()] == ["run-2"]
