"""Scale out: export a PPO run as an OpenRLHF (Ray) command line that scores with PrefLab's served reward
model through its OpenRLHF-compatible ``/get_reward`` route (``--remote_rm_url``).

Flag names were checked against ``openrlhf/cli/train_ppo_ray.py`` (OpenRLHF main, 2025; see
``OPENRLHF_FLAGS``). OpenRLHF's remote RM client cannot send headers, so the token goes in the URL path
(``/t/<token>/get_reward``); the command refers to it as the shell variable ``$PREFLAB_REWARD_TOKEN`` so that
no secret is ever written into a run, a file or a log.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from training.policy.ppo import PPOConfig

#: Where the reward server answers (``uvicorn rewardsvc.server:app --port 8100``); env override.
DEFAULT_REWARD_SERVER_URL = settings.PREFLAB_REWARD_SERVER_URL

#: Every flag this module emits, as declared by OpenRLHF's ``train_ppo_ray`` argparse (tests check this).
OPENRLHF_FLAGS = frozenset(
    {
        "--ref_num_nodes",
        "--ref_num_gpus_per_node",
        "--actor_num_nodes",
        "--actor_num_gpus_per_node",
        "--critic_num_nodes",
        "--critic_num_gpus_per_node",
        "--colocate_all_models",
        "--vllm_num_engines",
        "--vllm_tensor_parallel_size",
        "--pretrain",
        "--critic_pretrain",
        "--remote_rm_url",
        "--save_path",
        "--prompt_data",
        "--input_key",
        "--apply_chat_template",
        "--num_episodes",
        "--rollout_batch_size",
        "--micro_rollout_batch_size",
        "--train_batch_size",
        "--micro_train_batch_size",
        "--max_epochs",
        "--max_samples",
        "--prompt_max_len",
        "--generate_max_len",
        "--temperature",
        "--top_p",
        "--actor_learning_rate",
        "--critic_learning_rate",
        "--init_kl_coef",
        "--kl_target",
        "--kl_horizon",
        "--kl_estimator",
        "--eps_clip",
        "--value_clip",
        "--gamma",
        "--lambd",
        "--max_norm",
        "--reward_clip_range",
        "--advantage_estimator",
        "--seed",
        "--zero_stage",
        "--bf16",
        "--gradient_checkpointing",
    }  # fmt: skip
)


@dataclass
class OpenRLHFCluster:
    """Cluster shape of the exported job."""

    nodes: int = 1
    """Nodes for the actor (and the critic / reference, which get the same shape)."""
    gpus_per_node: int = 8
    """GPUs per node."""
    vllm_num_engines: int = 2
    """vLLM engines for generation (0 disables vLLM)."""
    vllm_tensor_parallel_size: int = 1
    """GPUs per vLLM engine."""
    colocate_all_models: bool = True
    """Put actor, critic, reference and vLLM on the same GPUs (the usual single-node setup)."""
    ray_address: str = "http://127.0.0.1:8265"
    """Ray dashboard address for ``ray job submit``."""
    zero_stage: int = 2
    """DeepSpeed ZeRO stage."""
    micro_batch_size: int = 4
    """Per-GPU micro batch for rollouts and training."""


def remote_rm_url(reward_server_url: str, token_var: str = "PREFLAB_REWARD_TOKEN") -> str:
    """``<server>/t/$TOKEN/get_reward``: OpenRLHF posts ``{"query", "prompts"}`` there."""
    return f"{reward_server_url.rstrip('/')}/t/${{{token_var}}}/get_reward"


def export_prompts(prompts: list[str], path: str | Path) -> Path:
    """Write prompts as JSONL ``{"input": ...}`` (OpenRLHF's ``--prompt_data`` with ``--input_key input``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for p in prompts:
            fh.write(json.dumps({"input": p}, ensure_ascii=False) + "\n")
    return path


def openrlhf_args(
    *,
    cfg: PPOConfig,
    pretrain: str,
    prompt_data: str,
    reward_server_url: str,
    save_path: str,
    n_prompts: int,
    critic_pretrain: str = "",
    cluster: OpenRLHFCluster | None = None,
) -> list[str]:
    """Arguments of ``python -m openrlhf.cli.train_ppo_ray`` equivalent to our PPO config.

    Mapping: one PrefLab iteration (``batch_size`` rollouts, ``ppo_epochs`` passes in minibatches of
    ``mini_batch_size``) = one OpenRLHF rollout batch (``--rollout_batch_size``, ``--max_epochs``,
    ``--train_batch_size``); ``steps`` iterations = ``--max_samples`` prompts over ``--num_episodes`` passes.
    Our single learning rate is used for both actor and critic.
    """
    c = cluster or OpenRLHFCluster()
    samples = cfg.steps * cfg.batch_size
    args = [
        "--ref_num_nodes", c.nodes, "--ref_num_gpus_per_node", c.gpus_per_node,
        "--actor_num_nodes", c.nodes, "--actor_num_gpus_per_node", c.gpus_per_node,
        "--critic_num_nodes", c.nodes, "--critic_num_gpus_per_node", c.gpus_per_node,
        "--vllm_num_engines", c.vllm_num_engines, "--vllm_tensor_parallel_size", c.vllm_tensor_parallel_size,
        "--pretrain", pretrain, "--critic_pretrain", critic_pretrain or pretrain,
        "--remote_rm_url", remote_rm_url(reward_server_url),
        "--save_path", save_path,
        "--prompt_data", prompt_data, "--input_key", "input",
        "--num_episodes", max(1, math.ceil(samples / max(1, n_prompts))),
        "--max_samples", samples,
        "--rollout_batch_size", cfg.batch_size, "--micro_rollout_batch_size", c.micro_batch_size,
        "--train_batch_size", cfg.mini_batch_size, "--micro_train_batch_size", min(c.micro_batch_size, cfg.mini_batch_size),
        "--max_epochs", cfg.ppo_epochs,
        "--prompt_max_len", cfg.max_prompt_length, "--generate_max_len", cfg.max_new_tokens,
        "--temperature", cfg.temperature, "--top_p", 1.0,
        "--actor_learning_rate", cfg.learning_rate, "--critic_learning_rate", cfg.learning_rate,
        "--init_kl_coef", cfg.init_kl_coef, "--kl_horizon", cfg.kl_horizon, "--kl_estimator", cfg.kl_estimator,
        "--eps_clip", cfg.clip_range, "--value_clip", cfg.clip_range_value,
        "--gamma", cfg.gamma, "--lambd", cfg.lam, "--max_norm", cfg.max_grad_norm,
        "--advantage_estimator", "gae", "--seed", cfg.seed, "--zero_stage", c.zero_stage,
    ]  # fmt: skip
    if cfg.adaptive_kl:
        args += ["--kl_target", cfg.target_kl]
    if cfg.reward_clip is not None:
        args += ["--reward_clip_range", -cfg.reward_clip, cfg.reward_clip]
    if cfg.use_chat_template:
        args.append("--apply_chat_template")
    if c.colocate_all_models:
        args.append("--colocate_all_models")
    args += ["--bf16", "--gradient_checkpointing"]
    return [str(a) for a in args]


def openrlhf_command(
    *,
    cfg: PPOConfig,
    pretrain: str,
    prompt_data: str,
    reward_server_url: str,
    save_path: str,
    n_prompts: int,
    critic_pretrain: str = "",
    cluster: OpenRLHFCluster | None = None,
) -> str:
    """A ``ray job submit`` shell command. ``$PREFLAB_REWARD_TOKEN`` stays a variable for the shell."""
    c = cluster or OpenRLHFCluster()
    args = openrlhf_args(
        cfg=cfg,
        pretrain=pretrain,
        prompt_data=prompt_data,
        reward_server_url=reward_server_url,
        save_path=save_path,
        n_prompts=n_prompts,
        critic_pretrain=critic_pretrain,
        cluster=c,
    )
    quoted = []
    for a in args:
        # Double quotes keep ${PREFLAB_REWARD_TOKEN} expandable; everything else is single-quoted if needed.
        quoted.append(f'"{a}"' if "${" in a else shlex.quote(a))
    lines = [
        f"ray job submit --address={shlex.quote(c.ray_address)} -- python3 -m openrlhf.cli.train_ppo_ray"
    ]
    i = 0
    while i < len(quoted):
        j = i + 1
        while j < len(quoted) and not quoted[j].startswith("--"):
            j += 1
        lines.append("  " + " ".join(quoted[i:j]))
        i = j
    return " \\\n".join(lines)
