"""Record shapes and their normalisation into one ``ImportRecord``.

Accepted shapes (detected from the first record's keys unless named):

- ``responses``: ``{"prompt", "responses": [text | {"text", "model"}], "models"?: [...]}``; a prompt
  with several responses, paired by the project's pairing strategy.
- ``pairs``: ``{"prompt", "chosen", "rejected", "chosen_model"?, "rejected_model"?}``; one known
  preference, imported as two candidates and one task (optionally with the preference as a prior).
- ``hh_rlhf``: ``{"chosen", "rejected"}`` where both are Anthropic hh-rlhf transcripts
  (``"\\n\\nHuman: ...\\n\\nAssistant: ..."``); the shared turns become the prompt (chat messages) and each
  side's final Assistant turn its candidate (see ``hh_rlhf.py``).

A prompt is a non-empty string or a list of ``{"role", "content"}`` chat messages (in CSV: that list as
JSON text). Optional on every shape: ``id`` (kept as the prompt's external id) and ``metadata`` (an object).
No stored value may hold a NUL character (PostgreSQL cannot store one in text or JSON), a NaN or infinite
number (not JSON; PostgreSQL refuses them too) or nest deeper than ``MAX_NESTING`` levels.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from annotation.chat import render_messages
from annotation.importing.errors import ImportFileError
from annotation.importing.hh_rlhf import split_transcripts

SHAPES = ("responses", "pairs", "hh_rlhf")
# What each shape reads from a record's fields (the import page shows a file's columns through this).
SHAPE_FIELDS: dict[str, dict[str, str]] = {
    "responses": {
        "prompt": "prompt (text or chat messages)",
        "responses": "candidate responses (paired by the pairing strategy)",
        "models": "model name of each response",
    },
    "pairs": {
        "prompt": "prompt (text or chat messages)",
        "chosen": "candidate, preferred",
        "rejected": "candidate, not preferred",
        "chosen_model": "model name of the preferred candidate",
        "rejected_model": "model name of the other candidate",
    },
    "hh_rlhf": {
        "chosen": "transcript: shared turns -> prompt, last Assistant turn -> preferred candidate",
        "rejected": "transcript: last Assistant turn -> the other candidate",
    },
}
COMMON_FIELDS = {"id": "external id of the prompt", "metadata": "prompt metadata"}
MAX_NESTING = 100  # levels of lists/objects in metadata or generation parameters
ROLES = ("system", "user", "assistant", "tool")


@dataclass
class Response:
    text: str
    model_name: str = ""
    generation_params: dict = field(default_factory=dict)


@dataclass
class ImportRecord:
    """One input record, validated. ``preferred`` is (chosen index, rejected index) into ``responses`` for
    shapes that carry a known preference. ``skip_reason`` is set for records kept out on purpose
    (counted in the report, never written)."""

    location: str
    prompt_text: str
    prompt_messages: list[dict] | None
    responses: list[Response]
    preferred: tuple[int, int] | None = None
    external_id: str = ""
    metadata: dict = field(default_factory=dict)
    skip_reason: str = ""


def detect_shape(record: dict, location: str = "") -> str:
    keys = set(record)
    if "responses" in keys:
        return "responses"
    if {"chosen", "rejected"} <= keys:
        return "pairs" if "prompt" in keys else "hh_rlhf"
    raise ImportFileError(
        "cannot tell the record shape: expected 'prompt' + 'responses', 'prompt' + 'chosen' + 'rejected', "
        f"or hh-rlhf 'chosen' + 'rejected' transcripts; found keys {sorted(keys)}",
        location=location,
    )


def normalize_record(record: dict, shape: str, location: str) -> ImportRecord:
    """Validate one record of ``shape``; raise ImportFileError naming the field and the reason."""
    normalizers = {"responses": _normalize_responses, "pairs": _normalize_pairs, "hh_rlhf": _normalize_hh}
    if shape not in normalizers:
        raise ImportFileError(f"unknown shape {shape!r}; use one of {', '.join(SHAPES)}", field="shape")
    try:
        normalized = normalizers[shape](record, location)
    except RecursionError as exc:  # a CSV cell of JSON text nested past the recursion limit
        raise ImportFileError("JSON nested too deeply", location=location) from exc
    return _storable(normalized)


def _storable(record: ImportRecord) -> ImportRecord:
    """Refuse what the database cannot store (NUL characters, NaN/Infinity) or should not (absurdly deep
    nesting), whatever the format it came from (JSON text, a CSV cell of JSON, Parquet or Arrow floats)."""
    names = ("chosen", "rejected") if record.preferred else None
    texts = [("prompt", record.prompt_text), ("id", record.external_id)]
    nested = [("prompt", record.prompt_messages), ("metadata", record.metadata)]
    for i, response in enumerate(record.responses):
        key = names[i] if names else f"responses[{i}]"
        texts += [(key, response.text), (key, response.model_name)]
        nested.append((key, response.generation_params))
    for key, text in texts:
        if "\x00" in text:
            raise _nul(record, key)
    for key, value in nested:
        stack = [(value, 0)] if value else []
        while stack:  # iterative: a recursive walk would itself overflow on deep input
            item, depth = stack.pop()
            if isinstance(item, str):
                if "\x00" in item:
                    raise _nul(record, key)
            elif isinstance(item, float) and not math.isfinite(item):
                raise ImportFileError(
                    f"{item!r} is not a JSON number (NaN and Infinity cannot be stored)",
                    location=record.location,
                    field=key,
                )
            elif isinstance(item, dict | list):
                if depth >= MAX_NESTING:
                    raise ImportFileError(
                        f"nested deeper than {MAX_NESTING} levels", location=record.location, field=key
                    )
                children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
    return record


def _nul(record: ImportRecord, key: str) -> ImportFileError:
    return ImportFileError(
        "contains a NUL character (\\u0000), which cannot be stored", location=record.location, field=key
    )


def _require(record: dict, key: str, location: str) -> Any:
    if key not in record or record[key] is None:
        raise ImportFileError("missing required field", location=location, field=key)
    return record[key]


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _maybe_json(value: Any, want: type) -> Any:
    """CSV cells hold lists as JSON text; decode when the text is JSON of the wanted type."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            decoded = json.loads(value)
        except ValueError:  # not JSON (or an integer too long to convert): the cell is plain text
            return value
        if isinstance(decoded, want):
            return decoded
    return value


def _messages(value: list, location: str, key: str) -> list[dict]:
    if not value:
        raise ImportFileError("empty message list", location=location, field=key)
    out = []
    for i, msg in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(msg, dict):
            raise ImportFileError(
                f"must be a {{role, content}} object, got {_type_name(msg)}", location=location, field=where
            )
        role, content = msg.get("role"), msg.get("content")
        if role not in ROLES:
            raise ImportFileError(
                f"role must be one of {', '.join(ROLES)}, got {role!r}",
                location=location,
                field=f"{where}.role",
            )
        if not isinstance(content, str):
            raise ImportFileError(
                f"content must be a string, got {_type_name(content)}",
                location=location,
                field=f"{where}.content",
            )
        out.append({"role": role, "content": content})
    return out


def _prompt(record: dict, location: str) -> tuple[str, list[dict] | None]:
    value = _maybe_json(_require(record, "prompt", location), list)
    if isinstance(value, str):
        if not value.strip():
            raise ImportFileError("empty prompt", location=location, field="prompt")
        return value, None
    if isinstance(value, list):
        messages = _messages(value, location, "prompt")
        return render_messages(messages), messages
    raise ImportFileError(
        f"must be a string or a list of {{role, content}} messages, got {_type_name(value)}",
        location=location,
        field="prompt",
    )


def _response_text(value: Any, location: str, key: str) -> str:
    """A response is a string, or chat messages whose last (assistant) message is the response."""
    value = _maybe_json(value, list)
    if isinstance(value, list) and value:
        last = _messages(value, location, key)[-1]
        if last["role"] != "assistant":
            raise ImportFileError(
                "the last message of a response must be the assistant's", location=location, field=key
            )
        value = last["content"]
    if not isinstance(value, str):
        raise ImportFileError(f"must be a string, got {_type_name(value)}", location=location, field=key)
    if not value.strip():
        raise ImportFileError("empty response", location=location, field=key)
    return value


def _string(record: dict, key: str, location: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int):
        raise ImportFileError(f"must be a string, got {_type_name(value)}", location=location, field=key)
    return str(value)


def _common(record: dict, location: str) -> tuple[str, dict]:
    metadata = _maybe_json(record.get("metadata") or {}, dict)
    if not isinstance(metadata, dict):
        raise ImportFileError(
            f"must be an object, got {_type_name(metadata)}", location=location, field="metadata"
        )
    return _string(record, "id", location)[:200], metadata


def _normalize_responses(record: dict, location: str) -> ImportRecord:
    text, messages = _prompt(record, location)
    raw = _maybe_json(_require(record, "responses", location), list)
    if not isinstance(raw, list):
        raise ImportFileError(f"must be a list, got {_type_name(raw)}", location=location, field="responses")
    if not raw:
        raise ImportFileError("needs at least one response", location=location, field="responses")
    models = _maybe_json(record.get("models") or [], list)
    if not isinstance(models, list) or (models and len(models) != len(raw)):
        raise ImportFileError(
            "must be a list with one model name per response", location=location, field="models"
        )
    responses = []
    for i, item in enumerate(raw):
        key = f"responses[{i}]"
        model = str(models[i]) if models else ""
        params: dict = {}
        if isinstance(item, dict):
            body = item.get("text", item.get("content", item.get("response")))
            if body is None:
                raise ImportFileError("missing required field 'text'", location=location, field=key)
            model = str(item.get("model", item.get("model_name", model)) or "")
            params = item.get("generation_params", item.get("params")) or {}
            if not isinstance(params, dict):
                raise ImportFileError(
                    "must be an object", location=location, field=f"{key}.generation_params"
                )
            item = body
        responses.append(Response(_response_text(item, location, key), model[:200], params))
    external_id, metadata = _common(record, location)
    return ImportRecord(location, text, messages, responses, external_id=external_id, metadata=metadata)


def _normalize_pairs(record: dict, location: str) -> ImportRecord:
    text, messages = _prompt(record, location)
    chosen = _response_text(_require(record, "chosen", location), location, "chosen")
    rejected = _response_text(_require(record, "rejected", location), location, "rejected")
    responses = [
        Response(chosen, _string(record, "chosen_model", location)[:200]),
        Response(rejected, _string(record, "rejected_model", location)[:200]),
    ]
    external_id, metadata = _common(record, location)
    return ImportRecord(
        location,
        text,
        messages,
        responses,
        preferred=(0, 1),
        external_id=external_id,
        metadata=metadata,
        skip_reason="identical_pair" if chosen.strip() == rejected.strip() else "",
    )


def _normalize_hh(record: dict, location: str) -> ImportRecord:
    sides = {}
    for key in ("chosen", "rejected"):
        value = _require(record, key, location)
        if not isinstance(value, str):
            raise ImportFileError(f"must be a string, got {_type_name(value)}", location=location, field=key)
        sides[key] = value
    split = split_transcripts(sides["chosen"], sides["rejected"], location=location)
    external_id, metadata = _common(record, location)
    skip = ""
    if not split.chosen.strip() or not split.rejected.strip():
        skip = "empty_response"
    elif split.chosen.strip() == split.rejected.strip():
        skip = "identical_pair"
    return ImportRecord(
        location,
        render_messages(split.messages),
        split.messages,
        [Response(split.chosen), Response(split.rejected)],
        preferred=(0, 1),
        external_id=external_id,
        metadata=metadata,
        skip_reason=skip,
    )
