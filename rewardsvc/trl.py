"""A ready TRL reward function backed by the reward server:

    from rewardsvc.trl import preflab_reward
    trainer = GRPOTrainer(model=..., reward_funcs=[preflab_reward("http://rm:8100", token)], ...)

TRL (1.16) calls a reward function as ``f(prompts=..., completions=..., completion_ids=..., **columns)`` and
runs ``async`` ones concurrently on its own event loop (``GRPOTrainer`` and ``RLOOTrainer`` both check
``trl.trainer.utils.is_async_callable``). Prompts and completions are either strings or chat messages; a
conversational completion is a list with the assistant message.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from rewardsvc.client import AsyncPrefLabRewardClient, ClientConfig


def _completion_text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):  # [{"role": "assistant", "content": "..."}]
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    return str(completion)


def to_items(prompts: list, completions: list) -> list[dict]:
    """TRL's (prompts, completions) as the server's items."""
    return [
        {"prompt": prompt, "response": _completion_text(completion)}
        for prompt, completion in zip(prompts, completions, strict=True)
    ]


def preflab_reward(
    url: str,
    token: str | None = None,
    *,
    normalize: bool = False,
    model: int | str | None = None,
    timeout: float = 60.0,
    max_retries: int = 4,
    name: str = "preflab_reward",
) -> Callable[..., Coroutine[Any, Any, list[float]]]:
    """An async reward function for ``reward_funcs``. ``normalize`` gives (r - mean) / std with the RM's
    stored statistics; ``model`` pins a version (the request fails if the server serves another)."""
    config = ClientConfig(timeout=timeout, max_retries=max_retries)

    async def reward(prompts: list, completions: list, **kwargs: Any) -> list[float]:
        # One client per call: TRL runs the function on its own daemon event loop, and httpx clients are
        # bound to the loop they were created on.
        async with AsyncPrefLabRewardClient(url, token, config) as client:
            result = await client.score(to_items(prompts, completions), normalize=normalize, model=model)
        return result.rewards

    reward.__name__ = reward.__qualname__ = name
    return reward
