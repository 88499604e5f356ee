"""The optional lm-evaluation-harness layer of the capability gate: any standard or custom harness task, run
with ``lm_eval.simple_evaluate`` on the same models after our own task sets (docs/policy-loop.md).

Django-free. ``lm_eval`` is imported inside the functions: it is the ``harness`` extra, and without harness
tasks in a gate config nothing here loads it. One ``HFLM`` per model serves all of its tasks; the tasks run
one ``simple_evaluate`` call each, so the caller can record a result and check for a cancel between tasks
(the harness has no hook between batches).

A task's score is its *primary metric*: the first higher-is-better metric in the harness's results whose
value lies in [0, 1] (``acc``, ``exact_match``, ``prompt_level_strict_acc``, ...). Its interval is the same
seeded percentile bootstrap as our sets, over the per-sample values the harness logs; a group (``mmlu``),
which logs samples only per subtask, gets score ± 1.96 stderr clipped to [0, 1] instead.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from training.policy.capability.intervals import ScoreInterval, bootstrap_interval
from training.policy.capability.runner import ANSWER_CHARS_KEPT, ITEMS_KEPT

#: ``task_set`` of a harness result row: ``harness:<task>`` (the column holds 32 characters).
TASK_SET_PREFIX = "harness:"
MAX_TASK_NAME_CHARS = 24
#: Letters, digits, ``_ - .``; no ``/`` or ``*``: a name is looked up in the task index, never a path or glob.
TASK_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class HarnessTaskError(RuntimeError):
    """A harness task that cannot be run or scored; the message names the task."""


def harness_installed() -> bool:
    """Whether ``lm_eval`` can be imported (checked where a gate config is parsed, without importing it)."""
    try:
        return importlib.util.find_spec("lm_eval") is not None
    except (ImportError, ValueError):
        return False


def harness_task_set(task: str) -> str:
    return f"{TASK_SET_PREFIX}{task}"


def harness_task_manager(*, include_path: str | None, include_defaults: bool):
    """The harness's task index: its ~12,000 default tasks (about a minute to build on 2 cores) and/or the
    task YAMLs under ``include_path``."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path or None, include_defaults=include_defaults)


def unknown_tasks(task_manager, names: list[str]) -> list[str]:
    """Names that are neither a task, a group nor a tag of the index."""
    known = set(task_manager.all_tasks)
    return [name for name in names if name not in known]


@dataclass
class HarnessOutcome:
    """A model's score on one harness task: the primary metric, its interval, per-sample outcomes."""

    task: str
    metric: str
    interval: ScoreInterval
    items: list[dict[str, Any]]

    @property
    def task_set(self) -> str:
        return harness_task_set(self.task)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _primary_metric(task: str, results: dict[str, Any]) -> tuple[str, str, float]:
    """(metric, filter, value) of the first higher-is-better metric of ``task`` whose value is in [0, 1]."""
    row = results["results"].get(task)
    if row is None:
        raise HarnessTaskError(f"harness task {task!r}: the harness returned no result for it")
    better = results.get("higher_is_better", {}).get(task, {})
    seen = []
    for key, value in row.items():
        if "," not in key or "_stderr," in key:
            continue
        metric, filter_name = key.split(",", 1)
        seen.append(f"{metric}={value}")
        number = _number(value)
        if number is not None and 0.0 <= number <= 1.0 and better.get(metric, True):
            return metric, filter_name, number
    raise HarnessTaskError(
        f"harness task {task!r}: no higher-is-better metric in [0, 1] to gate on "
        f"(got {', '.join(seen) or 'no metric'})"
    )


def summarise_task(task: str, results: dict[str, Any], *, n_boot: int, seed: int) -> HarnessOutcome:
    """One task's outcome from ``simple_evaluate``'s results (pure: checked on hand-built results)."""
    metric, filter_name, value = _primary_metric(task, results)
    samples = [
        s for s in (results.get("samples") or {}).get(task, []) if s.get("filter", filter_name) == filter_name
    ]
    values = [_number(s.get(metric)) for s in samples]
    per_sample = bool(samples) and all(v is not None and 0.0 <= v <= 1.0 for v in values)
    if per_sample and abs(sum(values) / len(values) - value) < 1e-9:  # a mean: bootstrap it like our sets
        interval = bootstrap_interval(values, n_boot=n_boot, seed=seed)
    else:  # a group (samples live under its subtasks) or an aggregate other than the mean
        stderr = _number(results["results"][task].get(f"{metric}_stderr,{filter_name}")) or 0.0
        n_samples = results.get("n-samples", {})
        n = n_samples.get(task, {}).get("effective") or sum(
            n_samples.get(sub, {}).get("effective", 0)
            for sub in results.get("group_subtasks", {}).get(task, [])
        )
        interval = ScoreInterval(
            value, max(0.0, value - 1.96 * stderr), min(1.0, value + 1.96 * stderr), int(n)
        )
    items = []
    for sample, score in zip(samples[:ITEMS_KEPT], values, strict=False):
        answer = sample.get("filtered_resps")
        item = {
            "id": sample.get("doc_id"),
            "score": score,
            "target": str(sample.get("target")).replace("\x00", "")[:ANSWER_CHARS_KEPT],
        }
        if isinstance(answer, list) and answer and isinstance(answer[0], str):
            answer = answer[0]
        if isinstance(answer, str):  # a generated answer; a multiple-choice task logs log-likelihoods
            item["answer"] = answer.replace("\x00", "")[:ANSWER_CHARS_KEPT]
        items.append(item)
    return HarnessOutcome(task=task, metric=f"{metric},{filter_name}", interval=interval, items=items)


def evaluate_harness_tasks(
    model_dir: str,
    tasks: list[str],
    *,
    task_manager,
    limit: int,
    batch_size: int,
    bootstrap_samples: int,
    seed: int,
) -> Iterator[HarnessOutcome]:
    """One model on each harness task (first ``limit`` documents of each), yielding each task's outcome as
    it finishes: the caller records it and may stop between tasks. Answers go through the model's chat
    template when it has one, as our sets and the rollouts do."""
    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM

    # HFLM's default device is "cuda", which a CPU-only torch refuses.
    lm = HFLM(
        pretrained=model_dir, batch_size=batch_size, device="cuda" if torch.cuda.is_available() else "cpu"
    )
    chat = bool(getattr(lm.tokenizer, "chat_template", None))
    try:
        for task in tasks:
            try:
                results = lm_eval.simple_evaluate(
                    model=lm,
                    tasks=[task],
                    limit=limit,
                    task_manager=task_manager,
                    apply_chat_template=chat,
                    fewshot_as_multiturn=chat,
                    log_samples=True,
                    bootstrap_iters=bootstrap_samples,
                    random_seed=seed,
                    numpy_random_seed=seed,
                    torch_random_seed=seed,
                    fewshot_random_seed=seed,
                )
            except Exception as exc:
                raise HarnessTaskError(f"harness task {task!r} failed: {type(exc).__name__}: {exc}") from exc
            yield summarise_task(task, results, n_boot=bootstrap_samples, seed=seed)
    finally:
        del lm
