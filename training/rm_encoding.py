"""How a reward model sees a (prompt, response): one Django-free module for training, evaluation, the policy
loop's in-process reward and the reward server (``rewardsvc.scoring``), so the model is scored on the very
inputs it was trained on.

* Layout (``SequenceLayout``): decoder tokenizers with an EOS get ``prompt + response + EOS`` (what TRL builds
  from text); encoders without an EOS (BERT) get ``[CLS] prompt [SEP] response [SEP]``, a cross-encoder
  input.
* Truncation: the prompt loses its oldest tokens first. Training (``PairEncoder.encode_pair``) cuts one
  prompt for both responses of a pair and drops a pair whose responses alone do not fit; scoring one input
  (``SequenceLayout.fit``) then cuts the response from the left too, because a score must come back.
* Padding and forward (``forward`` / ``score_sequences``): right padding, ``input_ids`` + ``attention_mask``
  only, the first logit of each row, no gradient.
* Scoring inputs (``InputEncoder``, built from the RM card by ``encoder_from_card``): the card's
  ``encoding`` (``encoding_record``: layout, prompt rendering, max length, truncation, padding side, pad
  token) is what training used; prompts in any received form are brought to its rendering
  (``training.prompt_rendering``). ``prepare_tokenizer`` gives causal LMs right padding and a pad token that
  is not the EOS, so their classification head reads the EOS.
* Normalisation (``normalize_rewards``): ``(r - mean) / std`` with the statistics measured on the train split
  at training time and stored on the card.

torch is imported inside the functions that need it, so importing this module is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EncodedInput:
    """One tokenized input, ready to be padded into a batch."""

    input_ids: list[int]
    truncated: bool

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class SequenceLayout:
    """The special tokens around (prompt, response) for one tokenizer, and the single-input cut."""

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

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def assemble(self, prompt_ids: list[int], response_ids: list[int], *, middle: bool = True) -> list[int]:
        return self.prefix + prompt_ids + (self.middle if middle else []) + response_ids + self.suffix

    def without_final_eos(self, ids: list[int]) -> list[int]:
        """Decoders get one EOS appended: an EOS the text already ends with (OpenRLHF sends decoded
        sequences with it) is dropped so it is not doubled."""
        eos = self.tokenizer.eos_token_id
        if self.suffix == [eos] and ids and ids[-1] == eos:
            return ids[:-1]
        return ids

    def fit(
        self, prompt_ids: list[int], response_ids: list[int], max_length: int, *, middle: bool = True
    ) -> EncodedInput:
        """``prefix + prompt + middle + response + suffix`` cut from the left of the prompt (then of the
        response, if the response alone is too long) to fit ``max_length``."""
        n_middle = len(self.middle) if middle else 0
        budget = max(0, max_length - len(self.prefix) - n_middle - len(self.suffix))
        truncated = len(prompt_ids) + len(response_ids) > budget
        if truncated:
            if len(response_ids) >= budget:
                prompt_ids, response_ids = [], response_ids[len(response_ids) - budget :] if budget else []
            else:
                keep = budget - len(response_ids)
                prompt_ids = prompt_ids[len(prompt_ids) - keep :] if keep else []
        return EncodedInput(self.assemble(prompt_ids, response_ids, middle=middle), truncated)

    def encode(self, prompt: str, response: str, max_length: int) -> EncodedInput:
        """One (prompt, response) text pair as the reward server scores it."""
        return self.fit(self.ids(prompt), self.without_final_eos(self.ids(response)), max_length)


@dataclass
class InputEncoder:
    """One scoring input as training encoded it, following the RM card (``encoding_from_card``): the reward
    server's routes, the policy loop's in-process reward and spot checks all encode through it.

    * ``prompt_rendering`` (``training.prompt_rendering``): what a prompt becomes before tokenising. With it,
      messages are rendered, and text in a known chat form (hh transcript, a chat template's output) is
      parsed and rendered the same way (``normalise_text``); a full conversation text is split into
      (prompt, response) when it ends with an assistant turn.
    * Without a recorded rendering (a hub RM, an older card): text is kept as sent, and messages go through
      the tokenizer's chat template (``messages_rendering="chat_template"``) or the PrefLab rendering.
    """

    tokenizer: Any
    max_length: int
    messages_rendering: str = "chat_template"
    """``preflab``, ``hh_transcript`` or ``chat_template``."""
    normalise_text: bool = False
    layout: SequenceLayout = field(init=False)

    def __post_init__(self) -> None:
        self.layout = SequenceLayout(self.tokenizer)
        self._special = set(self.tokenizer.all_special_ids)

    def encode(self, prompt: str | list[dict], response: str) -> EncodedInput:
        from training.prompt_rendering import normalise_pair

        if self.messages_rendering != "chat_template" and (self.normalise_text or isinstance(prompt, list)):
            prompt, response = normalise_pair(prompt, response, self.messages_rendering)
        elif isinstance(prompt, list):
            if getattr(self.tokenizer, "chat_template", None):
                return self._chat_template(prompt, response)
            # no chat template: a plain "Role: content" rendering, then the assistant's turn
            roles = "\n\n".join(
                f"{m.get('role', 'user').capitalize()}: {m.get('content', '')}" for m in prompt
            )
            prompt = roles + "\n\nAssistant: "
        return self.layout.encode(prompt, response, self.max_length)

    def _chat_template(self, messages: list[dict], response: str) -> EncodedInput:
        conversation = [*messages, {"role": "assistant", "content": response}]
        ids = list(
            self.tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True)["input_ids"]
        )
        if len(ids) <= self.max_length:
            return EncodedInput(ids, False)
        n_prefix = 1 if ids[0] in self._special else 0
        return EncodedInput(truncate_left(ids, self.max_length, n_prefix, 0), True)

    def encode_text(self, text: str) -> EncodedInput:
        """One complete text (``/classify``, OpenRLHF's query without a prompt): a conversation in a known
        chat form is split and encoded as its (prompt, response) pair (when the card records a rendering);
        other text is ``text + EOS`` for decoders (an EOS at the end is not doubled), ``[CLS] text [SEP]``
        for BERT-like encoders."""
        if self.normalise_text and self.messages_rendering != "chat_template":
            from training.prompt_rendering import split_chat_text

            split = split_chat_text(text, self.messages_rendering)
            if split is not None:
                return self.layout.encode(*split, self.max_length)
        layout = self.layout
        return layout.fit([], layout.without_final_eos(layout.ids(text)), self.max_length, middle=False)


def prepare_tokenizer(tokenizer) -> bool:
    """Right padding (what ``forward`` and TRL's collator do) and a pad token that is not the EOS: a causal
    LM's classification head reads the last token that is not the pad id, so with pad == EOS the appended EOS
    would be skipped. Uses the unknown token when there is one; else adds ``<|pad|>`` and returns True (the
    caller resizes the embeddings)."""
    tokenizer.padding_side = "right"
    eos = tokenizer.eos_token_id
    if tokenizer.pad_token_id is not None and (
        tokenizer.pad_token_id != eos or tokenizer.cls_token_id is not None
    ):
        return False
    unk = tokenizer.unk_token_id
    if unk is not None and unk not in (eos, tokenizer.bos_token_id):
        tokenizer.pad_token = tokenizer.unk_token
        return False
    tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    return True


def encoding_record(
    tokenizer, *, max_length: int, truncate_prompt_left: bool = True, prompt_rendering: str = "preflab"
) -> dict[str, Any]:
    """The RM card's ``encoding``: how training encoded its inputs, which serving follows."""
    layout = SequenceLayout(tokenizer)
    return {
        "layout": "cross_encoder" if layout.middle else "decoder",
        "chat_template": False,
        "prompt_rendering": prompt_rendering,
        "max_length": int(max_length),
        "truncation": "prompt_left" if truncate_prompt_left else "drop_pair",
        "padding_side": "right",
        "pad_token": tokenizer.pad_token,
        "reward_token": "last_non_pad" if not layout.middle else "cls",
    }


def encoder_from_card(tokenizer, card: dict[str, Any], *, max_length: int) -> InputEncoder:
    """The ``InputEncoder`` a card asks for (older cards: ``messages_format`` only, text kept as sent)."""
    encoding = card.get("encoding") or {}
    rendering = encoding.get("prompt_rendering")
    if encoding.get("padding_side", "right") != "right":
        raise ValueError(f"padding side {encoding['padding_side']!r} is not supported; training pads right")
    if rendering:
        return InputEncoder(tokenizer, max_length, messages_rendering=rendering, normalise_text=True)
    trained_on_snapshot = card.get("messages_format") == "text" or (
        "messages_format" not in card and card.get("snapshot_hash")
    )
    return InputEncoder(
        tokenizer, max_length, messages_rendering="preflab" if trained_on_snapshot else "chat_template"
    )


def truncate_left(ids: Sequence[int], max_length: int, n_prefix: int = 0, n_suffix: int = 0) -> list[int]:
    """Keep the ``n_prefix`` leading and ``n_suffix`` trailing (special) tokens and the last tokens of the
    body in between, so the result is at most ``max_length`` long (for already-assembled sequences, such as
    a chat template's output)."""
    ids = list(ids)
    if len(ids) <= max_length:
        return ids
    n_prefix = min(n_prefix, max_length)
    n_suffix = min(n_suffix, max_length - n_prefix)
    keep_body = max_length - n_prefix - n_suffix
    body = ids[n_prefix : len(ids) - n_suffix]
    tail = body[len(body) - keep_body :] if keep_body > 0 else []
    return ids[:n_prefix] + tail + (ids[len(ids) - n_suffix :] if n_suffix else [])


@dataclass
class PairEncoder:
    """Training's encoding of a preference pair: both responses share one prompt, cut from the left by the
    same amount; a pair whose longer response alone does not fit is dropped (as TRL drops over-long pairs)."""

    tokenizer: Any
    max_length: int
    truncate_prompt_left: bool = True
    layout: SequenceLayout = field(init=False)

    def __post_init__(self) -> None:
        self.layout = SequenceLayout(self.tokenizer)

    def encode_pair(self, prompt: str, chosen: str, rejected: str) -> tuple[list[int], list[int], str]:
        """``(chosen_ids, rejected_ids, outcome)`` with outcome "kept", "truncated" or "dropped"."""
        layout = self.layout
        p, c, r = layout.ids(prompt), layout.ids(chosen), layout.ids(rejected)
        longest = len(p) + max(len(c), len(r)) + layout.n_special
        outcome = "kept"
        if longest > self.max_length:
            budget = self.max_length - layout.n_special - max(len(c), len(r))
            if not self.truncate_prompt_left or budget < 0:
                return [], [], "dropped"
            p = p[len(p) - budget :] if budget > 0 else []
            outcome = "truncated"
        return layout.assemble(p, c), layout.assemble(p, r), outcome


def tokenize_pairs(rows: list[dict], encoder: PairEncoder, *, use_margin: bool = True) -> tuple[dict, dict]:
    """Columns for ``datasets.Dataset.from_dict`` and a report {pairs, kept, truncated, dropped}.

    ``kept_index`` maps each output row to its input row (to align the meta rows after drops)."""
    cols: dict[str, list] = {"chosen_ids": [], "rejected_ids": [], "kept_index": []}
    has_margin = use_margin and any("margin" in row and row["margin"] is not None for row in rows)
    if has_margin:
        cols["margin"] = []
    report = {"pairs": len(rows), "kept": 0, "truncated": 0, "dropped": 0}
    for i, row in enumerate(rows):
        chosen_ids, rejected_ids, outcome = encoder.encode_pair(
            row.get("prompt", ""), row["chosen"], row["rejected"]
        )
        report[outcome] += 1
        if outcome == "dropped":
            continue
        cols["chosen_ids"].append(chosen_ids)
        cols["rejected_ids"].append(rejected_ids)
        cols["kept_index"].append(i)
        if has_margin:
            cols["margin"].append(float(row.get("margin") or 0.0))
    report["kept"] = report["pairs"] - report["dropped"] - report["truncated"]
    return cols, report


# --- forward --------------------------------------------------------------------------------------------


def forward(model, sequences: Sequence[Sequence[int]], *, pad_token_id: int) -> list[float]:
    """One right-padded forward pass returning the first logit of each sequence. Segment ids are left at
    their default (zeros), as in training (``input_ids`` + ``attention_mask`` only)."""
    import torch

    if not sequences:
        return []
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        attention[row, : len(seq)] = 1
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
    return [float(x) for x in logits[:, 0].float().cpu().tolist()]


def score_sequences(
    model, sequences: Sequence[Sequence[int]], *, pad_token_id: int, batch_size: int = 16
) -> list[float]:
    """Rewards of pre-tokenised sequences: sorted by length to cut padding, ``batch_size`` per forward,
    returned in input order."""
    model.eval()
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    out = [0.0] * len(sequences)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        values = forward(model, [sequences[i] for i in chunk], pad_token_id=pad_token_id)
        for i, value in zip(chunk, values, strict=True):
            out[i] = value
    return out


def score_split(
    model, tokenizer, rows: list[dict], meta: list[dict], *, max_length: int, batch_size: int = 16
):
    """Score the pairs of a split as training encoded them; returns (r_chosen, r_rejected, kept rows, kept
    meta, data report)."""
    encoder = PairEncoder(tokenizer, max_length=max_length, truncate_prompt_left=True)
    cols, report = tokenize_pairs(rows, encoder, use_margin=False)
    n = len(cols["chosen_ids"])
    rewards = score_sequences(
        model,
        cols["chosen_ids"] + cols["rejected_ids"],
        pad_token_id=encoder.layout.pad_id,
        batch_size=batch_size,
    )
    kept = cols["kept_index"]
    return rewards[:n], rewards[n:], [rows[i] for i in kept], [meta[i] for i in kept], report


# --- normalisation --------------------------------------------------------------------------------------


def can_normalize(mean: float | None, std: float | None) -> bool:
    return mean is not None and std is not None and math.isfinite(std) and std > 0


def normalize_rewards(rewards: Sequence[float], mean: float | None, std: float | None) -> list[float]:
    """``(r - mean) / std`` with the statistics stored at training time (rewards on the train split)."""
    if not can_normalize(mean, std):
        raise ValueError("this reward model has no stored reward mean/std to normalise with")
    return [(float(r) - mean) / std for r in rewards]


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
