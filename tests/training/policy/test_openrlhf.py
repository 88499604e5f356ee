"""The OpenRLHF export: flags OpenRLHF declares, values from our PPO config, and a /get_reward URL that the
running reward server answers in OpenRLHF's remote-RM format."""

import argparse
import json
import shlex

import httpx
import pytest

from tests.factories import make_token, make_user
from training.policy.openrlhf import (
    OPENRLHF_FLAGS,
    OpenRLHFCluster,
    export_prompts,
    openrlhf_args,
    openrlhf_command,
    remote_rm_url,
)
from training.policy.ppo import PPOConfig


def openrlhf_parser() -> argparse.ArgumentParser:
    """The subset of OpenRLHF's train_ppo_ray argparse that we emit, with its declared types."""
    p = argparse.ArgumentParser()
    store_true = {"--colocate_all_models", "--apply_chat_template", "--bf16", "--gradient_checkpointing"}
    floats = {"--temperature", "--top_p", "--actor_learning_rate", "--critic_learning_rate", "--init_kl_coef",
              "--kl_target", "--eps_clip", "--value_clip", "--gamma", "--lambd", "--max_norm"}  # fmt: skip
    strings = {"--pretrain", "--critic_pretrain", "--remote_rm_url", "--save_path", "--prompt_data", "--input_key",
               "--kl_estimator", "--advantage_estimator"}  # fmt: skip
    for flag in OPENRLHF_FLAGS:
        if flag in store_true:
            p.add_argument(flag, action="store_true")
        elif flag == "--reward_clip_range":
            p.add_argument(flag, type=float, nargs=2)
        elif flag in floats:
            p.add_argument(flag, type=float)
        elif flag in strings:
            p.add_argument(flag, type=str)
        else:
            p.add_argument(flag, type=int)
    return p


def test_args_use_declared_flags_and_our_values():
    cfg = PPOConfig(steps=10, batch_size=32, mini_batch_size=8, ppo_epochs=2, init_kl_coef=0.02, target_kl=5.0,
                    learning_rate=2e-6, max_new_tokens=128)  # fmt: skip
    args = openrlhf_args(cfg=cfg, pretrain="/models/sft", prompt_data="/data/prompts.jsonl",
                         reward_server_url="http://rm:8001/", save_path="/out", n_prompts=100)  # fmt: skip
    assert {a for a in args if a.startswith("--")} <= OPENRLHF_FLAGS
    ns = openrlhf_parser().parse_args(args)
    assert ns.remote_rm_url == "http://rm:8001/t/${PREFLAB_REWARD_TOKEN}/get_reward"
    assert ns.pretrain == ns.critic_pretrain == "/models/sft"
    assert (ns.init_kl_coef, ns.kl_target, ns.actor_learning_rate) == (0.02, 5.0, 2e-6)
    assert (ns.rollout_batch_size, ns.train_batch_size, ns.max_epochs) == (32, 8, 2)
    assert (ns.max_samples, ns.num_episodes, ns.generate_max_len) == (320, 4, 128)
    assert (
        ns.reward_clip_range == [-10.0, 10.0] and ns.advantage_estimator == "gae" and ns.apply_chat_template
    )


def test_shell_command_keeps_the_token_a_variable(tmp_path):
    prompts = export_prompts(["Hi there", 'He said "no"'], tmp_path / "prompts.jsonl")
    assert [json.loads(x)["input"] for x in prompts.read_text().splitlines()] == ["Hi there", 'He said "no"']
    cmd = openrlhf_command(cfg=PPOConfig(adaptive_kl=False), pretrain="/m", prompt_data=str(prompts),
                           reward_server_url="http://rm:8001", save_path="/o", n_prompts=2,
                           cluster=OpenRLHFCluster(nodes=2, gpus_per_node=4))  # fmt: skip
    assert cmd.startswith(
        "ray job submit --address=http://127.0.0.1:8265 -- python3 -m openrlhf.cli.train_ppo_ray"
    )
    assert "secret" not in cmd and '"http://rm:8001/t/${PREFLAB_REWARD_TOKEN}/get_reward"' in cmd
    words = shlex.split(cmd.replace("\\\n", " "))
    ns = openrlhf_parser().parse_args(words[words.index("openrlhf.cli.train_ppo_ray") + 1 :])
    assert ns.actor_num_nodes == 2 and ns.actor_num_gpus_per_node == 4 and ns.kl_target is None


@pytest.mark.django_db(transaction=True)
def test_exported_get_reward_url_is_answered_by_the_reward_server(real_reward_server):
    token = make_token(make_user("engineer"), ["score"])
    url = remote_rm_url(real_reward_server).replace("${PREFLAB_REWARD_TOKEN}", token)
    prompt, response = "How do I bake bread?", " Mix flour and water."
    body = {"query": [prompt + response], "prompts": [prompt]}  # what OpenRLHF's remote RM client posts
    resp = httpx.post(url, json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    rewards = resp.json()["rewards"]
    assert len(rewards) == 1 and isinstance(rewards[0], float)
