"""Programs that score one answer of a capability task set: pure functions of (item, answer), no model.

Each scorer returns ``(score, detail)``: ``score`` is 1.0 (passed) or 0.0, ``detail`` says why in a few
JSON-able fields (kept per item on the result row). Instruction following is strict per prompt, as
IFEval's "prompt-level strict accuracy": an answer passes only if every constraint of its item holds.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    """One generated answer: the text without special tokens, the raw decode (special tokens kept, up to
    the end-of-sequence token) and whether generation stopped at EOS before ``max_new_tokens``."""

    text: str
    raw: str = ""
    stopped: bool = True


Scorer = Callable[[dict[str, Any], Answer], tuple[float, dict[str, Any]]]

# --- instruction following -----------------------------------------------------------------------------

_WORD = re.compile(r"\b[\w'-]+\b")
_BULLET = re.compile(r"^\s*[-*•]\s+\S", re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def sentence_count(text: str) -> int:
    """Sentences ending in . ! or ?, plus a trailing fragment without an end mark."""
    stripped = text.strip()
    if not stripped:
        return 0
    ends = _SENTENCE_END.findall(stripped)
    tail = not _SENTENCE_END.search(stripped[-1:] + " ")
    return len(ends) + (1 if tail else 0)


def bullet_count(text: str) -> int:
    return len(_BULLET.findall(text))


def _json_value(text: str) -> Any:
    """The answer parsed as JSON (a surrounding ```json fence allowed); raises ValueError if it is not."""
    return json.loads(_FENCE.sub("", text.strip()))


def _has_words(text: str, words: list[str]) -> list[str]:
    """The words of ``words`` missing from ``text`` (case-insensitive, whole words)."""
    return [w for w in words if not re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)]


def constraint_holds(constraint: dict[str, Any], text: str) -> bool:
    """Whether ``text`` satisfies one verifiable constraint; an unknown type raises ValueError."""
    kind, value = constraint["type"], constraint.get("value")
    if kind == "max_words":
        return word_count(text) <= value
    if kind == "min_words":
        return word_count(text) >= value
    if kind == "max_sentences":
        return 0 < sentence_count(text) <= value
    if kind == "bullets":
        return bullet_count(text) == value
    if kind == "no_commas":
        return "," not in text
    if kind == "keywords":
        return not _has_words(text, constraint["words"])
    if kind == "forbidden":
        return len(_has_words(text, constraint["words"])) == len(constraint["words"])
    if kind == "forbidden_chars":
        return not any(c in text for c in constraint["chars"])
    if kind == "lowercase":
        return any(c.isalpha() for c in text) and text == text.lower()
    if kind == "uppercase":
        return any(c.isalpha() for c in text) and text == text.upper()
    if kind == "starts_with":
        return text.strip().lower().startswith(constraint["text"].lower())
    if kind == "ends_with":
        return text.strip().lower().endswith(constraint["text"].lower())
    if kind in ("json", "json_list"):
        try:
            parsed = _json_value(text)
        except ValueError:
            return False
        if kind == "json_list":
            return isinstance(parsed, list) and len(parsed) == value
        return isinstance(parsed, dict) and all(k in parsed for k in constraint.get("keys", []))
    raise ValueError(f"unknown constraint type {kind!r}")


CONSTRAINT_TYPES = (
    "max_words",
    "min_words",
    "max_sentences",
    "bullets",
    "no_commas",
    "keywords",
    "forbidden",
    "forbidden_chars",
    "lowercase",
    "uppercase",
    "starts_with",
    "ends_with",
    "json",
    "json_list",
)


def score_instruction(item: dict[str, Any], answer: Answer) -> tuple[float, dict[str, Any]]:
    failed = [c["type"] for c in item["constraints"] if not constraint_holds(c, answer.text)]
    return (0.0 if failed else 1.0), {"failed": failed}


# --- arithmetic ----------------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def last_number(text: str) -> float | None:
    """The last number written in ``text`` (thousands commas allowed: ``1,200``), or None."""
    for raw in reversed(_NUMBER.findall(text)):
        cleaned = raw.replace(",", "")
        try:
            return float(cleaned)
        except ValueError:
            continue
    return None


def score_arithmetic(item: dict[str, Any], answer: Answer) -> tuple[float, dict[str, Any]]:
    got = last_number(answer.text)
    ok = got is not None and abs(got - float(item["answer"])) < 1e-6
    return (1.0 if ok else 0.0), {"extracted": got}


# --- short factual QA ----------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lowercase, drop punctuation and the articles a/an/the, collapse spaces."""
    text = text.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def score_factual(item: dict[str, Any], answer: Answer) -> tuple[float, dict[str, Any]]:
    """Exact match of the answer's first line, normalised, against any alias."""
    lines = [line for line in answer.text.strip().splitlines() if line.strip()]
    first = normalize_answer(lines[0]) if lines else ""
    aliases = {normalize_answer(a) for a in item["answers"]}
    return (1.0 if first and first in aliases else 0.0), {"normalized": first[:80]}


# --- format compliance ---------------------------------------------------------------------------------

#: Pieces of chat templates (ChatML, Llama 2/3, Zephyr/Phi, Gemma, plain BOS/EOS) that must not leak into
#: an answer: their presence means the model imitates the template instead of ending its turn.
TEMPLATE_RESIDUE = (
    "<|im_start|>",
    "<|im_end|>",
    "<|assistant|>",
    "<|user|>",
    "<|system|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "[INST]",
    "[/INST]",
    "<<SYS>>",
    "<s>",
    "</s>",
)


def template_residue(text: str) -> list[str]:
    return [marker for marker in TEMPLATE_RESIDUE if marker in text]


def score_format(item: dict[str, Any], answer: Answer) -> tuple[float, dict[str, Any]]:
    """Passes when the answer is non-empty, carries no chat-template residue and ended at EOS."""
    residue = sorted(set(template_residue(answer.raw)) | set(template_residue(answer.text)))
    failed = []
    if not answer.text.strip():
        failed.append("empty")
    if residue:
        failed.append("template_residue")
    if not answer.stopped:
        failed.append("truncated")
    return (0.0 if failed else 1.0), {"failed": failed, "residue": residue[:4]}


SCORERS: dict[str, Scorer] = {
    "instruction": score_instruction,
    "arithmetic": score_arithmetic,
    "factual": score_factual,
    "format": score_format,
}
