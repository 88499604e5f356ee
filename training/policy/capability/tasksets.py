"""The registry of capability task sets shipped in ``sets/`` (one JSONL file each) and their scorers.

A set is a fixed list of ``{"id", "prompt", ...}`` items; what else an item holds depends on its scorer
(constraints, a numeric answer, aliases). Items are read once per process and checked on load, so a broken
file fails the first gate run loudly rather than scoring zero.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.policy.capability.scorers import CONSTRAINT_TYPES, SCORERS, Scorer

SETS_DIR = Path(__file__).with_name("sets")


@dataclass(frozen=True)
class TaskSet:
    name: str
    description: str
    scorer: Scorer
    items: tuple[dict[str, Any], ...]


#: name -> what it measures (the file is ``sets/<name>.jsonl``, the scorer ``scorers.SCORERS[name]``).
TASK_SET_DESCRIPTIONS = {
    "instruction": "Instruction following with verifiable constraints (strict per prompt)",
    "arithmetic": "Arithmetic word problems (last number in the answer)",
    "factual": "Short factual QA (normalised exact match, aliases)",
    "format": "Format compliance (non-empty, no chat-template residue, stops at EOS)",
}
TASK_SET_NAMES = tuple(TASK_SET_DESCRIPTIONS)

_REQUIRED = {"instruction": "constraints", "arithmetic": "answer", "factual": "answers", "format": "prompt"}


def _check_item(name: str, item: dict[str, Any], line: int) -> None:
    where = f"{name}.jsonl line {line}"
    if not isinstance(item.get("id"), str) or not isinstance(item.get("prompt"), str):
        raise ValueError(f"{where}: an item needs a string id and prompt")
    if _REQUIRED[name] not in item:
        raise ValueError(f"{where}: missing {_REQUIRED[name]!r}")
    for c in item.get("constraints", []):
        if c.get("type") not in CONSTRAINT_TYPES:
            raise ValueError(f"{where}: unknown constraint type {c.get('type')!r}")


@functools.cache
def task_set(name: str) -> TaskSet:
    """The task set ``name`` (KeyError if it is not in the registry)."""
    description = TASK_SET_DESCRIPTIONS[name]
    items = []
    with (SETS_DIR / f"{name}.jsonl").open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if line.strip():
                item = json.loads(line)
                _check_item(name, item, line_no)
                items.append(item)
    return TaskSet(name=name, description=description, scorer=SCORERS[name], items=tuple(items))
