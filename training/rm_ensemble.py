"""Loading a reward-model artifact, single or ensemble, for training's evaluation, the policy loop and the
reward server alike (Django-free, like ``training.rm_encoding``).

An ensemble artifact is one directory: the shared tokenizer at its top, each member a ``save_pretrained``
sequence-classification model under ``members/<i>``, and ``preflab_card.json`` whose ``ensemble.members``
lists them. ``load_reward_model`` returns a plain transformers model for a single RM and an
``EnsembleRewardModel`` for an ensemble: it runs one forward per member on the same padded batch and
answers with the members' mean as ``logits`` (so every caller of ``training.rm_encoding.forward`` scores an
ensemble with its mean, unchanged), plus ``member_logits`` for the spread. ``reward_spread`` is the
uncertainty the reward server returns: the population standard deviation of the members' rewards.

torch and transformers are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CARD_NAME = "preflab_card.json"
MEMBERS_DIR = "members"


def ensemble_members(model_dir: str | Path) -> list[Path]:
    """The member directories of an ensemble artifact (from its card), or [] for a single model."""
    path = Path(model_dir) / CARD_NAME
    card = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    members = (card.get("ensemble") or {}).get("members") or []
    return [Path(model_dir) / m["dir"] for m in members]


def reward_spread(values: Sequence[float]) -> tuple[float, float]:
    """(mean, population standard deviation) of one input's member rewards."""
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / n)


@dataclass
class EnsembleOutput:
    logits: Any
    """The members' mean, shape (batch, 1): what a single model's ``logits`` would be."""
    member_logits: Any
    """Each member's first logit, shape (batch, members)."""


class EnsembleRewardModel:
    """k reward models answering as one: ``model(input_ids=..., attention_mask=...)`` runs each member on
    the batch (one forward per member) and returns their mean. Quacks like a transformers model where
    PrefLab's scoring code touches one (``config``, ``eval``, ``parameters``, ``to``, the call)."""

    def __init__(self, members: Sequence[Any]) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)
        self.config = self.members[0].config

    @property
    def size(self) -> int:
        return len(self.members)

    def eval(self) -> EnsembleRewardModel:
        for member in self.members:
            member.eval()
        return self

    def to(self, *args, **kwargs) -> EnsembleRewardModel:
        self.members = [member.to(*args, **kwargs) for member in self.members]
        return self

    def parameters(self):
        return itertools.chain.from_iterable(member.parameters() for member in self.members)

    def __call__(self, input_ids=None, attention_mask=None, **kwargs) -> EnsembleOutput:
        import torch

        per_member = [
            m(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits[:, 0] for m in self.members
        ]
        stacked = torch.stack(per_member, dim=1)
        return EnsembleOutput(logits=stacked.mean(dim=1, keepdim=True), member_logits=stacked)


def load_reward_model(model_dir: str | Path, **kwargs) -> Any:
    """A transformers sequence-classification model, or an ``EnsembleRewardModel`` when the directory is an
    ensemble artifact; ``kwargs`` go to ``from_pretrained`` (each member's)."""
    from transformers import AutoModelForSequenceClassification

    members = ensemble_members(model_dir)
    if not members:
        return AutoModelForSequenceClassification.from_pretrained(model_dir, **kwargs)
    return EnsembleRewardModel(
        [AutoModelForSequenceClassification.from_pretrained(m, **kwargs) for m in members]
    )


def member_rewards(model, sequences: Sequence[Sequence[int]], *, pad_token_id: int) -> list[list[float]]:
    """Each input's rewards, one per member (a single model is an ensemble of one): one padded forward per
    member (``training.rm_encoding.forward``)."""
    from training.rm_encoding import forward

    members = model.members if isinstance(model, EnsembleRewardModel) else [model]
    per_member = [forward(m, sequences, pad_token_id=pad_token_id) for m in members]
    return [list(values) for values in zip(*per_member, strict=True)] if sequences else []
