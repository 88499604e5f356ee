"""Reward functions for policy optimisation: ``fn(prompts, responses) -> list[float]``.

Three sources: the served reward endpoint over HTTP (``HttpReward``; training never imports ``rewardsvc``,
it only talks to a URL), a reward-model artifact loaded in process (``InProcessReward``), and rules for
tests and demos (``make_rule_reward``). ``as_trl_reward`` adapts any of them to TRL's GRPO/RLOO signature.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

#: ``fn(prompts, responses)``: a prompt is text or a list of chat messages (``{"role", "content"}``), which every
#: source scores as the reward model's card says (the whole conversation, not its last turn).
RewardFn = Callable[[list[Any], list[str]], list[float]]

#: The reward server's native scoring route (see docs/policy-loop.md for the contract).
SCORE_PATH = "/v1/reward/score"

#: Largest ``length_bonus`` of a rule reward (reward units per response character).
LENGTH_BONUS_MAX = 1.0


class HttpReward:
    """POST ``{"items": [{"prompt", "response"}], "normalize": bool}`` to ``<base_url>/v1/reward/score``
    with a bearer token and return the ``rewards`` list. Batches of ``batch_size`` items per request; failures
    are retried by the shared policy (``training.http_retry``: 429 with ``Retry-After``, 502-504, connection
    errors, with backoff)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        normalize: bool = False,
        timeout_s: float = 60.0,
        batch_size: int = 64,
        retries: int = 2,
    ) -> None:
        import httpx

        base = base_url.rstrip("/")
        self.url = base if base.endswith(SCORE_PATH) else base + SCORE_PATH
        self.normalize, self.batch_size, self.retries = normalize, batch_size, retries
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(timeout=timeout_s, headers=headers)

    def _post(self, items: list[dict[str, Any]]) -> list[float]:
        from training.http_retry import RetryPolicy, send

        body = {"items": items, "normalize": self.normalize}
        resp = send(self.client, "POST", self.url, RetryPolicy(max_retries=self.retries), json=body)
        resp.raise_for_status()
        rewards = resp.json()["rewards"]
        if len(rewards) != len(items):
            raise ValueError(f"reward server returned {len(rewards)} rewards for {len(items)} items")
        return [float(r) for r in rewards]

    def __call__(self, prompts: list[Any], responses: list[str]) -> list[float]:
        items = [{"prompt": p, "response": r} for p, r in zip(prompts, responses, strict=True)]
        out: list[float] = []
        for start in range(0, len(items), self.batch_size):
            out.extend(self._post(items[start : start + self.batch_size]))
        return out

    def close(self) -> None:
        self.client.close()


class InProcessReward:
    """A reward-model artifact (``save_pretrained`` sequence-classification dir + tokenizer) scored in this
    process, encoded as its card says, truncated and normalised as the reward server does
    (``training.rm_encoding.InputEncoder``), so the in-process and the HTTP reward give the same numbers."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        max_length: int = 512,
        batch_size: int = 16,
        reward_mean: float | None = None,
        reward_std: float | None = None,
    ) -> None:
        import json

        from transformers import AutoTokenizer

        from training.rm_encoding import encoder_from_card
        from training.rm_ensemble import load_reward_model

        card_path = Path(model_dir) / "preflab_card.json"
        card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = load_reward_model(str(model_dir)).eval()  # an ensemble: its members' mean
        self.inputs = encoder_from_card(self.tokenizer, card, max_length=max_length)
        self.layout = self.inputs.layout
        self.max_length, self.batch_size = max_length, batch_size
        self.reward_mean, self.reward_std = reward_mean, reward_std

    def encode(self, prompt: Any, response: str) -> list[int]:
        return self.inputs.encode(prompt, response).input_ids

    def __call__(self, prompts: list[Any], responses: list[str]) -> list[float]:
        from training.rm_encoding import can_normalize, normalize_rewards, score_sequences

        seqs = [self.encode(p, r) for p, r in zip(prompts, responses, strict=True)]
        rewards = score_sequences(
            self.model, seqs, pad_token_id=self.layout.pad_id, batch_size=self.batch_size
        )
        if can_normalize(self.reward_mean, self.reward_std):
            rewards = normalize_rewards(rewards, self.reward_mean, self.reward_std)
        return rewards


def make_rule_reward(name: str, **params: Any) -> RewardFn:
    """Rule-based rewards for tests and demos.

    - ``keyword``: occurrences of ``params["keyword"]`` in the response (capped at ``params.get("cap", 5)``).
    - ``length``: ``-|len(response) - target| / target`` with ``target = params["target"]`` characters.
    - ``vowels``: share of vowels among the response characters, times ``params.get("scale", 5)``.

    Any rule takes ``length_bonus`` (default 0): ``length_bonus * len(response)`` (characters) is added to
    its score, a deliberate length bias (``demo.reward_hacking``: the same run with and without it shows
    the reward-hacking detectors and the promotion gate at work). Bounded by ``LENGTH_BONUS_MAX``.
    """
    bonus = float(params.pop("length_bonus", None) or 0.0)
    if not 0.0 <= bonus <= LENGTH_BONUS_MAX:
        raise ValueError(f"length_bonus must be between 0 and {LENGTH_BONUS_MAX}, not {bonus}")
    base = _rule(name, params)
    if not bonus:
        return base
    return lambda prompts, responses: [
        s + bonus * len(r) for s, r in zip(base(prompts, responses), responses, strict=True)
    ]


def _rule(name: str, params: dict[str, Any]) -> RewardFn:
    if name == "keyword":
        keyword, cap = params["keyword"], params.get("cap", 5)
        return lambda prompts, responses: [float(min(r.count(keyword), cap)) for r in responses]
    if name == "length":
        target = float(params["target"])
        return lambda prompts, responses: [-abs(len(r) - target) / target for r in responses]
    if name == "vowels":
        scale = float(params.get("scale", 5.0))
        return lambda prompts, responses: [
            scale * sum(c in "aeiouAEIOU" for c in r) / max(1, len(r)) for r in responses
        ]
    raise ValueError(f"unknown rule reward {name!r}")


def reward_from_spec(spec: dict[str, Any]) -> RewardFn:
    """Build a reward function from a run config's ``reward`` entry.

    ``{"type": "http", "url": ..., "token": ..., "normalize": false}``,
    ``{"type": "model", "artifact_dir": ..., "max_length": 512}`` or ``{"type": "rule", "name": ..., ...}``.
    """
    spec = dict(spec)
    kind = spec.pop("type", "model")
    if kind == "http":
        return HttpReward(
            spec["url"],
            token=spec.get("token", ""),
            normalize=bool(spec.get("normalize", False)),
            timeout_s=float(spec.get("timeout_s", 60.0)),
        )
    if kind == "model":
        return InProcessReward(
            spec["artifact_dir"],
            max_length=int(spec.get("max_length", 512)),
            reward_mean=spec.get("reward_mean"),
            reward_std=spec.get("reward_std"),
        )
    if kind == "rule":
        return make_rule_reward(spec.pop("name"), **spec)
    raise ValueError(f"unknown reward type {kind!r}")


def as_trl_reward(fn: RewardFn, name: str = "preflab_reward"):
    """Adapt ``fn(prompts, responses)`` to TRL's ``reward_func(prompts, completions, **kwargs)``.

    A conversational prompt (a list of messages) is passed on whole, as ``rewardsvc.trl.preflab_reward``
    sends it, so a multi-turn prompt keeps its context and the reward model renders it as its card says; a
    conversational completion becomes its assistant content.
    """

    def completion_text(x: Any) -> str:
        if isinstance(x, list):  # [{"role": "assistant", "content": "..."}]
            return "".join(str(m.get("content", "")) for m in x if isinstance(m, dict))
        if isinstance(x, dict):
            return str(x.get("content", ""))
        return str(x)

    def reward_func(prompts, completions, **kwargs) -> list[float]:
        return fn(list(prompts), [completion_text(c) for c in completions])

    reward_func.__name__ = name
    return reward_func
