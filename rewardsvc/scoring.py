"""Scoring core: load a reward model directory once and turn (prompt, response) pairs into rewards.

The artifact contract (from training): ``artifact_dir`` is a ``save_pretrained`` directory of an
``AutoModelForSequenceClassification`` with one label, its tokenizer and ``preflab_card.json``
(``reward_mean``, ``reward_std``, ``max_length``, ``base_model``, ``snapshot_hash``, ``version``).

Inputs are encoded exactly as training encoded them (``training.reward_training.PairEncoder``): decoders
get ``prompt ids + response ids + EOS``; BERT-like encoders ``[CLS] prompt [SEP] response [SEP]``. Chat
messages sent for a model PrefLab trained on a snapshot (its card says ``messages_format: text`` or names
the snapshot) are rendered to text as imports store them (``annotation.chat.render_messages``), because
that text is what the model was trained on; for other models (a hub RM served from a directory) they go
through the tokenizer's chat template (prompt messages + the response as the assistant turn) when it has
one. A response that already ends with the EOS token does not get a second one. Over-long inputs are cut
from the left, so the prompt loses its oldest tokens first and the response is kept whole whenever it fits.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annotation.chat import render_messages as render_as_stored

CARD_NAME = "preflab_card.json"

Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class EncodedInput:
    """One tokenized input, ready to be padded into a batch."""

    input_ids: list[int]
    truncated: bool

    def __len__(self) -> int:
        return len(self.input_ids)


def truncate_left(ids: Sequence[int], max_length: int, n_prefix: int = 0, n_suffix: int = 0) -> list[int]:
    """Keep the ``n_prefix`` leading and ``n_suffix`` trailing (special) tokens and the last tokens of the
    body in between, so the result is at most ``max_length`` long."""
    ids = list(ids)
    if len(ids) <= max_length:
        return ids
    n_prefix = min(n_prefix, max_length)
    n_suffix = min(n_suffix, max_length - n_prefix)
    keep_body = max_length - n_prefix - n_suffix
    body = ids[n_prefix : len(ids) - n_suffix]
    tail = body[len(body) - keep_body :] if keep_body > 0 else []
    return ids[:n_prefix] + tail + (ids[len(ids) - n_suffix :] if n_suffix else [])


def normalize_rewards(rewards: Sequence[float], mean: float | None, std: float | None) -> list[float]:
    """``(r - mean) / std`` with the statistics stored at training time (rewards on the train split)."""
    if mean is None or std is None or not math.isfinite(std) or std <= 0:
        raise ValueError("this reward model has no stored reward mean/std to normalise with")
    return [(float(r) - mean) / std for r in rewards]


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@dataclass
class SequenceLayout:
    """Special tokens around (prompt, response), the same layout as ``training.reward_training.PairEncoder``
    (kept import-free of Django here; a test checks the two agree token for token)."""

    tokenizer: Any
    prefix: list[int] = field(default_factory=list)
    middle: list[int] = field(default_factory=list)
    suffix: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        tok = self.tokenizer
        if tok.eos_token_id is not None and tok.cls_token_id is None:
            self.suffix = [tok.eos_token_id]
        elif tok.cls_token_id is not None and tok.sep_token_id is not None:
            self.prefix, self.middle, self.suffix = [tok.cls_token_id], [tok.sep_token_id], [tok.sep_token_id]
        elif tok.eos_token_id is not None:
            self.suffix = [tok.eos_token_id]

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


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
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
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
    def _ids(self, text: str) -> list[int]:
        return self.encoder.ids(text) if text else []

    def _assemble(
        self, prompt_ids: list[int], response_ids: list[int], *, middle: bool = True
    ) -> EncodedInput:
        """``prefix + prompt + middle + response + suffix`` (the training layout), cut from the left of the
        prompt (then of the response, if the response alone is too long) to fit ``max_length``."""
        enc = self.encoder
        mid = enc.middle if middle else []
        budget = max(0, self.max_length - len(enc.prefix) - len(mid) - len(enc.suffix))
        truncated = len(prompt_ids) + len(response_ids) > budget
        if truncated:
            if len(response_ids) >= budget:
                prompt_ids, response_ids = [], response_ids[len(response_ids) - budget :] if budget else []
            else:
                keep = budget - len(response_ids)
                prompt_ids = prompt_ids[len(prompt_ids) - keep :] if keep else []
        return EncodedInput(enc.prefix + prompt_ids + mid + response_ids + enc.suffix, truncated)

    def _without_final_eos(self, ids: list[int]) -> list[int]:
        """Decoders get one EOS appended: an EOS the text already ends with (OpenRLHF sends decoded
        sequences with it) is dropped so it is not doubled."""
        if (
            self.encoder.suffix == [self.tokenizer.eos_token_id]
            and ids
            and ids[-1] == self.tokenizer.eos_token_id
        ):
            return ids[:-1]
        return ids

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
        return self._assemble(self._ids(prompt), self._without_final_eos(self._ids(response)))

    def encode_text(self, text: str) -> EncodedInput:
        """Encode one complete text (a rendered conversation), as ``/classify`` and ``/get_reward`` send:
        ``text + EOS`` for decoders (an EOS already at the end is not doubled), ``[CLS] text [SEP]`` for
        BERT-like encoders."""
        return self._assemble([], self._without_final_eos(self._ids(text)), middle=False)

    # --- forward ----------------------------------------------------------------------------------------
    def forward(self, batch: Sequence[EncodedInput]) -> list[float]:
        """One padded forward pass (right padding) returning the first logit of each input."""
        import torch

        if not batch:
            return []
        width = max(len(e) for e in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, enc in enumerate(batch):
            n = len(enc)
            input_ids[row, :n] = torch.tensor(enc.input_ids, dtype=torch.long)
            attention[row, :n] = 1
        # Segment ids are left at their default (zeros), as in training (input_ids + attention_mask only).
        with self._lock, torch.inference_mode():
            logits = self.model(input_ids=input_ids, attention_mask=attention).logits
        return [float(x) for x in logits[:, 0].tolist()]

    def score_encoded(self, encoded: Sequence[EncodedInput], batch_size: int = 16) -> list[float]:
        """Score many inputs: sorted by length to cut padding, ``batch_size`` per forward."""
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out = [0.0] * len(encoded)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            for i, value in zip(chunk, self.forward([encoded[i] for i in chunk]), strict=True):
                out[i] = value
        return out

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
        return self.reward_mean is not None and bool(self.reward_std) and self.reward_std > 0
