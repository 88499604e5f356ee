"""Scoring core: load a reward model directory once and turn (prompt, response) pairs into rewards.

The artifact contract (from training): ``artifact_dir`` is a ``save_pretrained`` directory of an
``AutoModelForSequenceClassification`` with one label, its tokenizer and ``preflab_card.json``
(``reward_mean``, ``reward_std``, ``max_length``, ``base_model``, ``snapshot_hash``, ``version``); or an
ensemble artifact (``training.rm_ensemble``: members under ``members/<i>``, listed on the card), scored with the
members' mean and their spread as the uncertainty (``RewardScorer.forward_scored``).

Inputs are encoded, padded, run and normalised by ``training.rm_encoding``, the module training and
evaluation use, following the card's ``encoding`` (``InputEncoder``): decoders get ``prompt ids + response
ids + EOS`` (right-padded; the reward is read at the last non-pad token), BERT-like encoders
``[CLS] prompt [SEP] response [SEP]``. A card that records its ``prompt_rendering`` (every RM trained since)
has prompts brought to that rendering whatever form they arrive in: chat messages, the raw hh transcript or
a policy's chat-template text (``training.prompt_rendering``). Older cards: messages for a model trained on
a snapshot are rendered as imports store them, other models' go through the tokenizer's chat template; text
is kept as sent. A response that already ends with the EOS token does not get a second one. Over-long
inputs are cut from the left, so the prompt loses its oldest tokens first and the response is kept whole
whenever it fits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.rm_encoding import (
    EncodedInput,
    InputEncoder,
    can_normalize,
    encoder_from_card,
    normalize_rewards,
    score_sequences,
    sigmoid,
)
from training.rm_encoding import forward as model_forward
from training.rm_ensemble import EnsembleRewardModel, load_reward_model, member_rewards, reward_spread

__all__ = [
    "CARD_NAME",
    "EncodedInput",
    "RewardList",
    "RewardScorer",
    "normalize_rewards",
    "read_card",
    "sigmoid",
]

CARD_NAME = "preflab_card.json"

Messages = list[dict[str, Any]]


def read_card(model_dir: Path | str) -> dict:
    path = Path(model_dir) / CARD_NAME
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def render_messages(messages: Messages) -> str:
    """A plain rendering of chat messages for tokenizers without a chat template."""
    return "\n\n".join(f"{m.get('role', 'user').capitalize()}: {m.get('content', '')}" for m in messages)


class RewardList(list):
    """Rewards in input order (JSON-encoded as a plain list), with ``uncertainty``: per input, the spread
    (population std) of an ensemble's member rewards, or None when a single model scored them."""

    def __init__(self, rewards, uncertainty: list[float] | None = None) -> None:
        super().__init__(rewards)
        self.uncertainty = uncertainty


class RewardScorer:
    """A loaded reward model and tokenizer. ``forward`` is not thread-safe: one thread runs forwards (the
    micro-batcher's worker), while ``encode`` may run anywhere."""

    def __init__(
        self,
        model,
        tokenizer,
        *,
        max_length: int = 512,
        reward_mean: float | None = None,
        reward_std: float | None = None,
        version: int | None = None,
        name: str = "reward-model",
        messages_format: str = "chat_template",
        card: dict | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        model_max = getattr(model.config, "max_position_embeddings", None) or max_length
        self.max_length = int(min(max_length, model_max))
        # We cut to max_length ourselves (from the left); silence the tokenizer's over-length warning.
        tokenizer.model_max_length = 10**9
        self.reward_mean = reward_mean
        self.reward_std = reward_std
        self.version = version
        self.name = name
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        if messages_format not in ("text", "chat_template"):
            raise ValueError(f"messages_format must be 'text' or 'chat_template', not {messages_format!r}")
        self.messages_format = messages_format
        if card is not None:
            self.max_length = int(
                min(self.max_length, (card.get("encoding") or {}).get("max_length") or 10**9)
            )
            self.inputs = encoder_from_card(tokenizer, card, max_length=self.max_length)
        else:
            rendering = "preflab" if messages_format == "text" else "chat_template"
            self.inputs = InputEncoder(tokenizer, self.max_length, messages_rendering=rendering)
        self.prompt_rendering = self.inputs.messages_rendering if self.inputs.normalise_text else None
        self.encoder = self.inputs.layout
        self.pair_encoding = bool(self.encoder.middle)  # [CLS] prompt [SEP] response [SEP]
        self.pad_id = self.encoder.pad_id
        self.labels = [
            (model.config.id2label or {}).get(i, f"LABEL_{i}") for i in range(model.config.num_labels)
        ]
        self.ensemble_size = model.size if isinstance(model, EnsembleRewardModel) else 1
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model_dir: Path | str,
        *,
        max_length: int | None = None,
        reward_mean: float | None = None,
        reward_std: float | None = None,
        version: int | None = None,
        name: str | None = None,
    ) -> RewardScorer:
        """Load a ``save_pretrained`` seq-cls dir, or an ensemble artifact (``training.rm_ensemble``: every
        member); explicit statistics override the card's."""
        import torch
        from transformers import AutoTokenizer

        model_dir = Path(model_dir)
        card = read_card(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = load_reward_model(model_dir, num_labels=1, dtype=torch.float32)
        model.eval()
        for member in getattr(model, "members", [model]):
            if member.config.pad_token_id is None:
                member.config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
        return cls(
            model,
            tokenizer,
            max_length=int(max_length or card.get("max_length") or tokenizer.model_max_length or 512),
            reward_mean=reward_mean if reward_mean is not None else card.get("reward_mean"),
            reward_std=reward_std if reward_std is not None else card.get("reward_std"),
            version=version if version is not None else card.get("version"),
            name=name or model_dir.name,
            # a model trained on a PrefLab snapshot saw chat prompts as imports render them
            messages_format=card.get("messages_format")
            or ("text" if card.get("snapshot_hash") else "chat_template"),
            card=card,
        )

    # --- encoding ---------------------------------------------------------------------------------------
    def encode(self, prompt: str | Messages, response: str) -> EncodedInput:
        """Encode one (prompt, response) pair as training did (``training.rm_encoding.InputEncoder``)."""
        return self.inputs.encode(prompt, response)

    def encode_text(self, text: str) -> EncodedInput:
        """Encode one complete text (a rendered conversation), as ``/classify`` and ``/get_reward`` send."""
        return self.inputs.encode_text(text)

    # --- forward ----------------------------------------------------------------------------------------
    def forward(self, batch: Sequence[EncodedInput]) -> list[float]:
        """One padded forward pass (``training.rm_encoding.forward``) returning each input's reward."""
        with self._lock:
            return model_forward(self.model, [e.input_ids for e in batch], pad_token_id=self.pad_id)

    def forward_scored(self, batch: Sequence[EncodedInput]) -> list[tuple[float, float | None]]:
        """(reward, uncertainty) of each input: for an ensemble the members' mean and population std, one
        padded forward per member on the batch; for a single model its reward and None."""
        sequences = [e.input_ids for e in batch]
        with self._lock:
            if self.ensemble_size == 1:
                return [(r, None) for r in model_forward(self.model, sequences, pad_token_id=self.pad_id)]
            per_input = member_rewards(self.model, sequences, pad_token_id=self.pad_id)
        return [reward_spread(values) for values in per_input]

    def score_encoded(self, encoded: Sequence[EncodedInput], batch_size: int = 16) -> list[float]:
        """Score many inputs: sorted by length to cut padding, ``batch_size`` per forward."""
        sequences = [e.input_ids for e in encoded]
        with self._lock:
            return score_sequences(self.model, sequences, pad_token_id=self.pad_id, batch_size=batch_size)

    def score_pairs(
        self, prompts: Sequence[str | Messages], responses: Sequence[str], batch_size: int = 16
    ) -> list[float]:
        """Raw rewards of (prompt, response) pairs."""
        encoded = [self.encode(p, r) for p, r in zip(prompts, responses, strict=True)]
        return self.score_encoded(encoded, batch_size=batch_size)

    def normalize(self, rewards: Sequence[float]) -> list[float]:
        return normalize_rewards(rewards, self.reward_mean, self.reward_std)

    @property
    def can_normalize(self) -> bool:
        return can_normalize(self.reward_mean, self.reward_std)
