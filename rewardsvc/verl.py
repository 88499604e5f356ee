"""verl custom reward functions backed by the reward server (verl passes the decoded response, not the
prompt, so keep the prompt in each row's ``extra_info``).

    reward.custom_reward_function.path=/path/to/rewardsvc/verl.py          # older verl: custom_reward_function.*
    reward.custom_reward_function.name=compute_score                        # or compute_score_batch with
    +reward.custom_reward_function.reward_kwargs.url=http://rm:8100         #   reward_model.reward_manager=batch
    +reward.custom_reward_function.reward_kwargs.token=pl_...

``url`` and ``token`` may also come from ``PREFLAB_RM_URL`` / ``PREFLAB_RM_TOKEN``. verl loads this file by
path, so it imports only the client (no Django).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

try:
    from rewardsvc.client import PrefLabRewardClient
except ImportError:  # loaded by path outside the project: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from rewardsvc.client import PrefLabRewardClient

_clients: dict[tuple[str, str | None], PrefLabRewardClient] = {}


def _client(url: str | None, token: str | None) -> PrefLabRewardClient:
    url = url or os.environ.get("PREFLAB_RM_URL", "http://127.0.0.1:8100")
    token = token or os.environ.get("PREFLAB_RM_TOKEN")
    key = (url, token)
    if key not in _clients:
        _clients[key] = PrefLabRewardClient(url, token)
    return _clients[key]


def _prompt(extra_info: Any, prompt_key: str) -> Any:
    if isinstance(extra_info, dict):
        return extra_info.get(prompt_key) or extra_info.get("question") or ""
    return ""


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any = None,
    extra_info: dict | None = None,
    *,
    url: str | None = None,
    token: str | None = None,
    prompt_key: str = "prompt",
    normalize: bool = False,
    **_: Any,
) -> float:
    """verl's per-sample signature (naive reward manager)."""
    item = {"prompt": _prompt(extra_info, prompt_key), "response": solution_str}
    return _client(url, token).score([item], normalize=normalize).rewards[0]


def compute_score_batch(
    data_sources: list,
    solution_strs: list[str],
    ground_truths: list,
    extra_infos: list,
    *,
    url: str | None = None,
    token: str | None = None,
    prompt_key: str = "prompt",
    normalize: bool = False,
    **_: Any,
) -> list[float]:
    """verl's batch signature (``reward_model.reward_manager=batch``): one request per chunk."""
    items = [
        {"prompt": _prompt(info, prompt_key), "response": text}
        for text, info in zip(solution_strs, extra_infos, strict=True)
    ]
    return _client(url, token).score(items, normalize=normalize).rewards
