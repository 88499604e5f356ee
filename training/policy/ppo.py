"""A compact PPO for language models (TRL removed its PPOTrainer in 1.13), readable top to bottom.

Four models: the actor (the policy being trained), a frozen reference (the SFT model) for the KL penalty, a
critic (a transformer backbone with a scalar value head), and the reward, which is any
``reward_fn(prompts, responses) -> scores`` (an HTTP reward server, an in-process reward model or a rule).

One iteration = rollout (sample responses) -> score -> per-token KL-penalised rewards -> GAE advantages ->
``ppo_epochs`` passes of clipped policy + clipped value loss over minibatches -> KL controller update -> log.
The maths lives in ``ppo_math``; this file only wires it together.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from training.policy import ppo_math as pm
from training.policy.metrics import distinct_n

RewardFn = Callable[[list[str], list[str]], list[float]]
StepCallback = Callable[[int, dict, list[dict]], None]


@dataclass
class PPOConfig:
    """Hyperparameters of a PPO run (stored as JSON on the run row). Defaults suit small models."""

    steps: int = 20
    """PPO iterations (each = one rollout batch + its optimisation)."""
    batch_size: int = 16
    """Prompts (and so rollouts) per iteration."""
    mini_batch_size: int = 8
    """Rollouts per gradient step inside an iteration."""
    ppo_epochs: int = 4
    """Passes over the rollout batch per iteration."""
    learning_rate: float = 1e-5
    """AdamW learning rate of the actor and the critic."""
    max_prompt_length: int = 128
    """Prompts are truncated (from the left) to this many tokens."""
    max_new_tokens: int = 32
    """Maximum response length in tokens."""
    temperature: float = 1.0
    """Sampling temperature; the log-probs used by PPO are computed at the same temperature."""
    top_k: int = 0
    """Top-k sampling (0 = off). Keep off for unbiased log-probs."""
    gamma: float = 1.0
    """Discount of GAE (1.0: the episode is one response)."""
    lam: float = 0.95
    """GAE lambda (bias/variance trade-off of the advantage)."""
    clip_range: float = 0.2
    """Policy ratio clip epsilon of the surrogate objective."""
    clip_range_value: float = 0.2
    """Value prediction clip range of the value loss."""
    vf_coef: float = 0.1
    """Weight of the value loss in the total loss."""
    init_kl_coef: float = 0.05
    """Initial (or fixed) KL penalty coefficient beta."""
    adaptive_kl: bool = True
    """Adapt beta toward ``target_kl`` (Ziegler et al. 2019) instead of keeping it fixed."""
    target_kl: float = 6.0
    """Target KL to the reference, in nats per response (for the adaptive controller and the detectors)."""
    kl_horizon: int = 10000
    """Horizon (in rollouts) of the adaptive KL controller: larger = slower beta changes."""
    kl_estimator: str = "k1"
    """Per-token KL estimator in the reward penalty: k1 (log-ratio), k2 or k3."""
    whiten_advantages: bool = True
    """Normalise advantages over the batch before the policy loss."""
    reward_clip: float | None = 10.0
    """Clip scores to [-reward_clip, reward_clip] before the update (None: no clip)."""
    missing_eos_penalty: float | None = None
    """Subtract this from the score of responses that hit ``max_new_tokens`` without an EOS."""
    max_grad_norm: float = 1.0
    """Gradient norm clip."""
    seed: int = 42
    """Seed of torch (sampling, minibatch order)."""
    use_chat_template: bool = True
    """Wrap each prompt as a user turn with the tokenizer's chat template (if it has one)."""
    num_sample_responses: int = 4
    """Sample responses kept per step for the run page."""


@dataclass
class PPOResult:
    history: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


class ValueModel(nn.Module):
    """The critic: a transformer backbone (``AutoModel``) with a zero-initialised scalar head per token."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> ValueModel:
        from transformers import AutoModel

        return cls(AutoModel.from_pretrained(str(path)))

    def forward(self, input_ids, attention_mask, position_ids) -> torch.Tensor:
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
        ).last_hidden_state
        return self.head(hidden).squeeze(-1)


def load_ppo_models(sft_dir: str | Path, critic_dir: str | Path | None = None, device: str | None = None):
    """Actor and frozen reference from the SFT model, critic backbone from ``critic_dir`` (default: SFT),
    all on ``device`` (default: CUDA when available, else CPU)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(str(sft_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    policy = AutoModelForCausalLM.from_pretrained(str(sft_dir)).to(device)
    ref = copy.deepcopy(policy)
    value = ValueModel.from_pretrained(critic_dir or sft_dir).to(device)
    return policy, ref, value, tokenizer


def format_prompts(tokenizer, prompts: list[str], use_chat_template: bool) -> list[str]:
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        return [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
            )
            for p in prompts
        ]
    return list(prompts)


def _response_mask(response: torch.Tensor, eos_id: int | None) -> torch.Tensor:
    """1 up to and including the first EOS (or everywhere if there is none)."""
    steps = torch.arange(response.shape[1], device=response.device).expand_as(response)
    if eos_id is None:
        return torch.ones_like(response)
    is_eos = response == eos_id
    first = torch.where(
        is_eos.any(1),
        is_eos.int().argmax(1),
        torch.full_like(is_eos[:, 0], response.shape[1], dtype=torch.long),
    )
    return (steps <= first.unsqueeze(1)).long()


def _forward(model, query, query_mask, response, response_mask, temperature: float, value: bool = False):
    """Logits (or values) at the positions that predict each response token."""
    input_ids = torch.cat([query, response], dim=1)
    attention_mask = torch.cat([query_mask, response_mask], dim=1)
    position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
    start = query.shape[1] - 1
    if value:
        return model(input_ids, attention_mask, position_ids)[:, start:-1]
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
    return logits[:, start:-1] / temperature


@torch.no_grad()
def generate(policy, tokenizer, prompts: list[str], config: PPOConfig):
    """Sample one response per prompt. Returns (query, query_mask, response, response_mask, texts)."""
    tokenizer.padding_side = "left"
    texts = format_prompts(tokenizer, prompts, config.use_chat_template)
    tokenizer.truncation_side = "left"
    enc = tokenizer(
        texts,
        return_tensors="pt",
        padding=True,
        truncation=True,
        max_length=config.max_prompt_length,
        add_special_tokens=False,
    )
    device = next(policy.parameters()).device
    enc = {k: v.to(device) for k, v in enc.items()}
    out = policy.generate(
        input_ids=enc["input_ids"],
        attention_mask=enc["attention_mask"],
        do_sample=True,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=1.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    response = out[:, enc["input_ids"].shape[1] :]
    mask = _response_mask(response, tokenizer.eos_token_id)
    response = torch.where(mask.bool(), response, torch.full_like(response, tokenizer.pad_token_id))
    decoded = tokenizer.batch_decode(response, skip_special_tokens=True)
    return enc["input_ids"], enc["attention_mask"], response, mask, decoded


def train_ppo(
    *,
    policy,
    ref_policy,
    value_model: ValueModel,
    tokenizer,
    prompts: list[str],
    reward_fn: RewardFn,
    config: PPOConfig,
    on_step: StepCallback | None = None,
) -> PPOResult:
    """Run ``config.steps`` PPO iterations over ``prompts`` (cycled). ``on_step(step, metrics, samples)`` is
    called after each iteration (raise from it to stop, e.g. on cancel)."""
    torch.manual_seed(config.seed)
    ref_policy.eval().requires_grad_(False)
    policy.eval()  # no dropout: rollout and update log-probs must agree
    value_model.eval()
    params = [p for p in policy.parameters() if p.requires_grad] + list(value_model.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, eps=1e-5)
    kl_ctl = (
        pm.AdaptiveKLController(config.init_kl_coef, config.target_kl, config.kl_horizon)
        if config.adaptive_kl
        else pm.FixedKLController(config.init_kl_coef)
    )
    result = PPOResult()
    g = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(prompts), generator=g).tolist()
    cursor = 0

    for step in range(1, config.steps + 1):
        t0 = time.monotonic()
        # 1. Rollout: a batch of prompts (cycled through a shuffled order) -> sampled responses.
        batch_idx = [order[(cursor + i) % len(order)] for i in range(config.batch_size)]
        cursor += config.batch_size
        batch_prompts = [prompts[i] for i in batch_idx]
        query, query_mask, response, mask, texts = generate(policy, tokenizer, batch_prompts, config)

        # 2. Score with the reward function; 3. log-probs of actor / reference, values of the critic.
        raw_scores = torch.tensor(
            reward_fn(batch_prompts, texts), dtype=torch.float32, device=response.device
        )
        scores = raw_scores.clone()
        has_eos = (response == tokenizer.eos_token_id).any(1)
        if config.missing_eos_penalty is not None:
            scores = torch.where(has_eos, scores, scores - config.missing_eos_penalty)
        if config.reward_clip is not None:
            scores = scores.clamp(-config.reward_clip, config.reward_clip)
        with torch.no_grad():  # in chunks of mini_batch_size: bounded memory for large batches
            old_logp, ref_logp, old_values, entropies = [], [], [], []
            for c in range(0, len(texts), config.mini_batch_size):
                q, qm = query[c : c + config.mini_batch_size], query_mask[c : c + config.mini_batch_size]
                r, m = response[c : c + config.mini_batch_size], mask[c : c + config.mini_batch_size]
                logits = _forward(policy, q, qm, r, m, config.temperature)
                old_logp.append(pm.logprobs_from_logits(logits, r))
                entropies.append(pm.entropy_from_logits(logits))
                del logits
                ref_logp.append(
                    pm.logprobs_from_logits(_forward(ref_policy, q, qm, r, m, config.temperature), r)
                )
                old_values.append(_forward(value_model, q, qm, r, m, 1.0, value=True) * m)
            old_logp, ref_logp = torch.cat(old_logp), torch.cat(ref_logp)
            old_values = torch.cat(old_values)
            entropy = pm.masked_mean(torch.cat(entropies), mask)

            # 4. Rewards with the per-token KL penalty, then GAE.
            rewards, kl = pm.kl_penalized_rewards(
                scores, old_logp, ref_logp, mask, kl_ctl.value, config.kl_estimator
            )
            advantages, returns = pm.gae_advantages(rewards, old_values, mask, config.gamma, config.lam)
            if config.whiten_advantages:
                advantages = pm.masked_whiten(advantages, mask)

        # 5. PPO epochs over minibatches: clipped surrogate + clipped value loss.
        stats: dict[str, list[float]] = {k: [] for k in ("pg", "vf", "clip", "vclip", "approx_kl")}
        for _ in range(config.ppo_epochs):
            perm = torch.randperm(config.batch_size, generator=g)
            for start in range(0, config.batch_size, config.mini_batch_size):
                mb = perm[start : start + config.mini_batch_size]
                new_logits = _forward(
                    policy, query[mb], query_mask[mb], response[mb], mask[mb], config.temperature
                )
                new_logp = pm.logprobs_from_logits(new_logits, response[mb])
                new_values = _forward(
                    value_model, query[mb], query_mask[mb], response[mb], mask[mb], 1.0, True
                )
                pg = pm.clipped_policy_loss(
                    new_logp, old_logp[mb], advantages[mb], mask[mb], config.clip_range
                )
                vf_loss, vf_clip = pm.clipped_value_loss(
                    new_values, old_values[mb], returns[mb], mask[mb], config.clip_range_value
                )
                loss = pg.loss + config.vf_coef * vf_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                for key, value in (
                    ("pg", pg.loss),
                    ("vf", vf_loss),
                    ("clip", pg.clip_fraction),
                    ("vclip", vf_clip),
                    ("approx_kl", pg.approx_kl),
                ):
                    stats[key].append(float(value.detach()))

        # 6. KL controller update and logging.
        seq_kl = kl.sum(1)
        beta = kl_ctl.value
        kl_ctl.update(float(seq_kl.mean()), config.batch_size)
        lengths = mask.sum(1).float()
        token_lists = [response[i, : int(lengths[i])].tolist() for i in range(len(texts))]
        metrics = {
            "step": step,
            "reward_mean": float(raw_scores.mean()),
            "reward_std": float(raw_scores.std()) if len(raw_scores) > 1 else 0.0,
            "reward_with_kl_mean": float((scores - beta * seq_kl).mean()),
            "kl": float(seq_kl.mean()),
            "kl_coef": beta,
            "entropy": float(entropy),
            "clip_fraction": sum(stats["clip"]) / len(stats["clip"]),
            "value_clip_fraction": sum(stats["vclip"]) / len(stats["vclip"]),
            "policy_loss": sum(stats["pg"]) / len(stats["pg"]),
            "value_loss": sum(stats["vf"]) / len(stats["vf"]),
            "approx_kl": sum(stats["approx_kl"]) / len(stats["approx_kl"]),
            "response_length_mean": float(lengths.mean()),
            "response_length_std": float(lengths.std()) if len(lengths) > 1 else 0.0,
            "eos_fraction": float(has_eos.float().mean()),
            "distinct_1": distinct_n(token_lists, 1),
            "distinct_2": distinct_n(token_lists, 2),
            "seconds": time.monotonic() - t0,
        }
        samples = [
            {"prompt": p, "response": r, "reward": float(s)}
            for p, r, s in list(zip(batch_prompts, texts, raw_scores.tolist(), strict=True))[
                : config.num_sample_responses
            ]
        ]
        result.history.append(metrics)
        result.samples = samples
        if on_step is not None:
            on_step(step, metrics, samples)
    return result


def save_policy(policy, tokenizer, out_dir: str | Path, config: PPOConfig | None = None) -> Path:
    """Write the trained actor as a ``save_pretrained`` directory (loadable by ``AutoModelForCausalLM``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if config is not None:
        import json

        (out / "ppo_config.json").write_text(json.dumps(asdict(config), indent=2))
    return out
