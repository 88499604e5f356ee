"""Our own small runner of the capability task sets: greedy, batched generation with transformers, then the
scorers of ``scorers.py``. (Why not lm-evaluation-harness: docs/policy-loop.md, "Capability gate".)

The prompt goes through the model's chat template when it has one, exactly as the PPO rollouts and the
battle answers do, so the gate measures the model as the policy loop uses it. Torch is imported inside the
functions: the web process imports this module's names without loading it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from training.policy.capability.scorers import Answer
from training.policy.capability.tasksets import TaskSet

#: Per-item outcomes kept on a result row (the answer text cut to ``ANSWER_CHARS_KEPT``).
ITEMS_KEPT = 100
ANSWER_CHARS_KEPT = 300


@dataclass
class SetOutcome:
    """A model's per-item scores on one task set, with what the scorer said about each answer."""

    task_set: str
    scores: list[float]
    items: list[dict[str, Any]]


def _eos_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = list(ids) if isinstance(ids, list | tuple) else ([ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def generate_greedy(
    model_dir: str,
    prompts: list[str],
    *,
    max_new_tokens: int,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> list[Answer]:
    """One greedy answer per prompt; ``on_batch(done)`` is called after each batch (it may raise to stop)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.policy.ppo import format_prompts

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    eos = _eos_ids(model, tokenizer)
    texts = format_prompts(tokenizer, prompts, True)
    # Similar lengths in a batch waste less on padding; answers go back to the prompts' order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    answers: dict[int, Answer] = {}
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer(
                [texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False
            )
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=eos,
            )
            for row, i in enumerate(idx):
                new = out[row, enc["input_ids"].shape[1] :].tolist()
                cut = next((k for k, t in enumerate(new) if t in eos), None)
                kept = new if cut is None else new[:cut]
                answers[i] = Answer(
                    text=tokenizer.decode(kept, skip_special_tokens=True).strip(),
                    raw=tokenizer.decode(kept, skip_special_tokens=False),
                    stopped=cut is not None,
                )
            if on_batch is not None:
                on_batch(len(answers))
    del model
    return [answers[i] for i in range(len(texts))]


def score_answers(task_set: TaskSet, items: list[dict[str, Any]], answers: list[Answer]) -> SetOutcome:
    """Score each answer with the set's scorer; the per-item record keeps the (cut) answer and the detail."""
    scores, kept = [], []
    for item, answer in zip(items, answers, strict=True):
        score, detail = task_set.scorer(item, answer)
        scores.append(score)
        if len(kept) < ITEMS_KEPT:
            kept.append(
                # PostgreSQL jsonb refuses NUL, which a model may decode (a byte-fallback token).
                {
                    "id": item["id"],
                    "score": score,
                    "answer": answer.text.replace("\x00", "")[:ANSWER_CHARS_KEPT],
                    **detail,
                }
            )
    return SetOutcome(task_set=task_set.name, scores=scores, items=kept)


def evaluate_model(
    model_dir: str,
    task_sets: list[TaskSet],
    *,
    max_items: int,
    max_new_tokens: int,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> list[SetOutcome]:
    """One model on several task sets (first ``max_items`` of each) in one generation pass."""
    chosen = [(ts, list(ts.items[:max_items])) for ts in task_sets]
    prompts = [item["prompt"] for _, items in chosen for item in items]
    answers = generate_greedy(
        model_dir, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, on_batch=on_batch
    )
    outcomes, start = [], 0
    for ts, items in chosen:
        outcomes.append(score_answers(ts, items, answers[start : start + len(items)]))
        start += len(items)
    return outcomes
