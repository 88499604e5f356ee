"""Scoring core: load a reward model directory once and turn (prompt, response) pairs into rewards.

The artifact contract (from training): ``artifact_dir`` is a ``save_pretrained`` directory of an
``AutoModelForSequenceClassification`` with one label, its tokenizer and ``preflab_card.json``
(``reward_mean``, ``reward_std``, ``max_length``, ``base_model``, ``snapshot_hash``, ``version``).

Inputs are encoded, padded, run and normalised by ``training.rm_encoding``, the module training and
evaluation use: decoders get ``prompt ids + response ids + EOS``; BERT-like encoders
``[CLS] prompt [SEP] response [SEP]``. Chat
messages sent for a model PrefLab trained on a snapshot (its card says ``messages_format: text`` or names
the snapshot) are rendered to text as imports store them (``annotation.chat.render_messages``), because
that text is what the model was trained on; for other models (a hub RM served from a directory) they go
through the tokenizer's chat template (prompt messages + the response as the assistant turn) when it has
one. A response that already ends with the EOS token does not get a second one. Over-long inputs are cut
from the left, so the prompt loses its oldest tokens first and the response is kept whole whenever it fits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from annotation.chat import render_messages as render_as_stored
from training.rm_encoding import (
    EncodedInput,
    SequenceLayout,
    can_normalize,
    normalize_rewards,
    score_sequences,
    sigmoid,
    truncate_left,
)
from training.rm_encoding import forward as model_forward

__all__ = ["CARD_NAME", "EncodedInput", "RewardScorer", "normalize_rewards", "read_card", "sigmoid"]

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
        self.encoder = SequenceLayout(tokenizer)
        self.pair_encoding = bool(self.encoder.middle)  # [CLS] prompt [SEP] response [SEP]
        self.pad_id = self.encoder.pad_id
        self._special = set(tokenizer.all_special_ids)
        self.labels = [
            (model.config.id2label or {}).get(i, f"LABEL_{i}") for i in range(model.config.num_labels)
        ]
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
        """Load a ``save_pretrained`` seq-cls dir; explicit statistics override the card's."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model_dir = Path(model_dir)
        card = read_card(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=1, dtype=torch.float32
        )
        model.eval()
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
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
        )

    # --- encoding ---------------------------------------------------------------------------------------
    def encode(self, prompt: str | Messages, response: str) -> EncodedInput:
        """Encode one (prompt, response) pair as training did. Chat messages: see the module docstring."""
        if isinstance(prompt, list):
            if self.messages_format == "text":
                prompt = render_as_stored(prompt)
            elif self.has_chat_template:
                conversation = [*prompt, {"role": "assistant", "content": response}]
                enc = self.tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True)
                ids = list(enc["input_ids"])
                if len(ids) <= self.max_length:
                    return EncodedInput(ids, False)
                n_prefix = 1 if ids[0] in self._special else 0
                return EncodedInput(truncate_left(ids, self.max_length, n_prefix, 0), True)
            else:
                prompt = render_messages(prompt) + "\n\nAssistant: "
        return self.encoder.encode(prompt, response, self.max_length)

    def encode_text(self, text: str) -> EncodedInput:
        """Encode one complete text (a rendered conversation), as ``/classify`` and ``/get_reward`` send:
        ``text + EOS`` for decoders (an EOS already at the end is not doubled), ``[CLS] text [SEP]`` for
        BERT-like encoders."""
        enc = self.encoder
        return enc.fit([], enc.without_final_eos(enc.ids(text)), self.max_length, middle=False)

    # --- forward ----------------------------------------------------------------------------------------
    def forward(self, batch: Sequence[EncodedInput]) -> list[float]:
        """One padded forward pass (``training.rm_encoding.forward``) returning each input's reward."""
        with self._lock:
            return model_forward(self.model, [e.input_ids for e in batch], pad_token_id=self.pad_id)

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
