"""Scored-sample logging: every scored pair of about ``sample_rate`` of the prompts is buffered in memory
and written as ``ScoredSample`` rows off the hot path (the spot-check queue reads them)."""

from __future__ import annotations

import hashlib
import json
from collections import deque

from rewardsvc.serving.auth import DbCall
from rewardsvc.serving.config import ServerConfig
from rewardsvc.serving.models import LoadedModel


class SampleLog:
    def __init__(self, config: ServerConfig, db: DbCall) -> None:
        self.db = db
        self._samples: deque[dict] = deque(maxlen=10_000)
        self._mod = int(round(1 / config.sample_rate)) if config.sample_rate > 0 else 0

    @property
    def enabled(self) -> bool:
        return bool(self._mod)

    def sample(self, model: LoadedModel, prompts: list, responses: list[str], rewards: list[float]) -> None:
        """Keep every scored pair of about ``sample_rate`` of the prompts (chosen by a hash of the prompt,
        so all responses to a kept prompt are kept and can be compared). Written off the hot path."""
        if not self._mod or model.reward_model_pk is None:
            return
        for prompt, response, reward in zip(prompts, responses, rewards, strict=True):
            key = json.dumps(prompt, sort_keys=True) if isinstance(prompt, list) else prompt
            if int(hashlib.blake2b(key.encode(), digest_size=8).hexdigest(), 16) % self._mod == 0:
                self._samples.append(
                    {
                        "prompt": prompt,
                        "response": response,
                        "reward": reward,
                        "reward_model_id": model.reward_model_pk,
                    }
                )

    async def flush(self) -> None:
        from rewardsvc.services import scored_samples_record

        rows = []
        while self._samples:
            rows.append(self._samples.popleft())
        if rows:
            await self.db(scored_samples_record, rows=rows)
