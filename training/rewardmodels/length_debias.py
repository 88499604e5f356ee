"""Length debiasing of reward-model training: a penalty on the correlation of the reward with response length.

A Bradley-Terry reward model learns whatever separates chosen from rejected; on hh-rlhf harmless data short
answers (refusals) win, so the plain model rewards brevity (reward/length correlation about -0.5). The
penalty adds ``weight * |corr(r, len)|`` to the loss, with the Pearson correlation taken over the 2B
responses (chosen and rejected) of each batch and ``len`` the response length in characters (the measure
the evaluation report's ``length_correlation`` uses). It is the correlation loss of ODIN (Chen et al., 2024,
"ODIN: Disentangled Reward Mitigates Hacking in RLHF") applied to the single reward head, without ODIN's
second (length) head: nothing is dropped at serving time, the saved model is an ordinary one-logit model.
The correlation is scale-free, so the penalty does not care about the reward's units, and a batch whose
rewards or lengths are all equal contributes no penalty (the small ``eps`` keeps its gradient finite).

The maths are the pure functions ``length_correlation`` / ``length_penalized_loss``; the TRL adapter is a
collator that carries the lengths and a ``RewardTrainer`` whose ``compute_loss`` adds the penalty to TRL's
own loss (margin and centring included) and logs the batch correlation.

The second option is a **length offset** (ODIN's separate length head, reduced to one fixed weight): before
training, a one-parameter Bradley-Terry fit finds how much the log-length difference alone explains the
labels (``length_offset_fit``), and training then sees the pair logit ``r(chosen) - r(rejected) + w * d``
with ``d = log1p(len chosen) - log1p(len rejected)``, passed to TRL as its ``margin`` column
(``margin - w * d``; TRL's loss is ``-log sigmoid(r_c - r_r - margin)``). The length term explains what
length explains, so the reward head has nothing to gain from encoding length; it is not part of the saved
model (serving scores ``r`` alone). It needs no change to TRL's trainer and costs nothing per step.
"""

from __future__ import annotations

import math
from typing import Any

LENGTH_COLUMNS = ("chosen_length", "rejected_length")


def length_correlation(rewards, lengths, eps: float = 1e-8):
    """Pearson correlation of two 1-d tensors: ``cov / sqrt(var_r * var_len + eps)`` (population moments).
    0 when either side is constant."""
    r = rewards.float() - rewards.float().mean()
    n = lengths.to(r.dtype) - lengths.to(r.dtype).mean()
    cov = (r * n).mean()
    return cov / ((r.pow(2).mean() * n.pow(2).mean()) + eps).sqrt()


def length_penalized_loss(pair_loss, rewards_chosen, rewards_rejected, len_chosen, len_rejected, weight):
    """``pair_loss + weight * |corr(rewards, lengths)|`` over chosen and rejected responses together.
    Returns ``(loss, corr)`` (the correlation, detached, for logging)."""
    import torch

    rewards = torch.cat([rewards_chosen, rewards_rejected])
    lengths = torch.cat([len_chosen, len_rejected])
    corr = length_correlation(rewards, lengths)
    return pair_loss + weight * corr.abs(), corr.detach()


def add_length_columns(cols: dict[str, list], rows: list[dict]) -> dict[str, list]:
    """Add the response lengths (characters) to ``tokenize_pairs`` columns, using its ``kept_index``."""
    kept = cols["kept_index"]
    cols["chosen_length"] = [float(len(rows[i]["chosen"])) for i in kept]
    cols["rejected_length"] = [float(len(rows[i]["rejected"])) for i in kept]
    return cols


def debiased_trainer(**kwargs: Any):
    """A ``RewardTrainer`` that adds ``args.length_penalty * |corr(r, len)|`` to its loss (see the module
    docstring); ``kwargs`` are ``RewardTrainer``'s, ``length_penalty`` included."""
    import torch
    from trl import RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    class LengthCollator(DataCollatorForPreference):
        """TRL's preference collator, plus the response lengths as one tensor [chosen..., rejected...]."""

        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            batch = super().torch_call(examples)
            if "chosen_length" not in examples[0]:  # a dataset without lengths (say, validation)
                return batch
            batch["lengths"] = torch.tensor(
                [e["chosen_length"] for e in examples] + [e["rejected_length"] for e in examples],
                dtype=torch.float,
            )
            return batch

    class LengthDebiasedRewardTrainer(RewardTrainer):
        def __init__(self, *, length_penalty: float, **kw):
            self.length_penalty = length_penalty
            tokenizer = kw["processing_class"]
            kw.setdefault("data_collator", LengthCollator(pad_token_id=tokenizer.pad_token_id))
            super().__init__(**kw)

        def _set_signature_columns_if_needed(self):
            if self._signature_columns is None:
                self._signature_columns = ["chosen_ids", "rejected_ids", "margin", *LENGTH_COLUMNS]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            lengths = inputs.pop("lengths", None)
            if lengths is None:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            loss, outputs = super().compute_loss(model, inputs, return_outputs=True)
            chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
            len_c, len_r = torch.chunk(lengths.to(chosen.device), chunks=2)
            loss, corr = length_penalized_loss(loss, chosen, rejected, len_c, len_r, self.length_penalty)
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["length_correlation"].append(corr.item())
            return (loss, outputs) if return_outputs else loss

    return LengthDebiasedRewardTrainer(**kwargs)


# A one-sided length difference (every chosen answer shorter) has no finite maximum; the cap keeps it sane.
LENGTH_OFFSET_CAP = 10.0


def length_log_differences(len_chosen, len_rejected) -> list[float]:
    """``log1p(len chosen) - log1p(len rejected)`` per pair (lengths in characters)."""
    return [math.log1p(c) - math.log1p(r) for c, r in zip(len_chosen, len_rejected, strict=True)]


def length_offset_fit(diffs: list[float], *, iterations: int = 50) -> float:
    """The weight ``w`` maximising ``sum log sigmoid(w * d)`` over the pairs' log-length differences: how
    strongly length alone predicts the chosen side (negative: shorter answers win). Newton's method in one
    dimension (the objective is concave); 0 when no pair differs in length, capped at +-LENGTH_OFFSET_CAP."""
    d = [x for x in diffs if x != 0.0]
    if not d:
        return 0.0
    w = 0.0
    for _ in range(iterations):
        grad = hess = 0.0
        for x in d:
            p = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, w * x))))  # sigmoid(w x)
            grad += x * (1.0 - p)
            hess += x * x * p * (1.0 - p)
        if hess <= 0.0:
            break
        step = grad / hess
        w = max(-LENGTH_OFFSET_CAP, min(LENGTH_OFFSET_CAP, w + step))
        if abs(step) < 1e-9 or abs(w) == LENGTH_OFFSET_CAP:
            break
    return float(w)


def add_length_offset(cols: dict[str, list], rows: list[dict]) -> float:
    """Fit the length offset on the kept train pairs and fold it into ``cols["margin"]`` (created when the
    snapshot has none): ``margin - w * d`` per pair. Returns ``w``."""
    kept = cols["kept_index"]
    diffs = length_log_differences(
        [len(rows[i]["chosen"]) for i in kept], [len(rows[i]["rejected"]) for i in kept]
    )
    w = length_offset_fit(diffs)
    margins = cols.get("margin") or [0.0] * len(kept)
    cols["margin"] = [float(m) - w * d for m, d in zip(margins, diffs, strict=True)]
    return w
