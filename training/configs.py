"""Typed parsing of job configs (reward, SFT, PPO, GRPO/RLOO runs, policy run specs, battles): one parse,
where JSON enters (the API, the CLI, a form), into the config dataclasses the code below works with.

pydantic validates a dict against a dataclass's type hints in strict JSON mode: ``"learning_rate": "fast"``
or ``"use_lora": 1`` is refused with the field named, unknown keys are refused (a typo must not pass as a
default), and nested dataclasses are parsed the same way. The dataclasses stay plain ``dataclasses`` (TRL's
style: every field documented, sane defaults); parsing adds nothing to them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import typing
from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

T = TypeVar("T")

_FORBID_EXTRA = ConfigDict(extra="forbid")


class ConfigError(ValueError):
    """A config that does not fit its dataclass. ``errors`` maps a dotted field path to its reasons."""

    def __init__(self, errors: dict[str, list[str]], what: str = "config") -> None:
        self.errors = errors
        detail = "; ".join(f"{field}: {', '.join(reasons)}" for field, reasons in errors.items())
        super().__init__(f"invalid {what}: {detail}")

    def prefixed(self, prefix: str) -> dict[str, list[str]]:
        """The errors with their paths under ``prefix`` (``config.learning_rate``), for a 400 body; each
        reason names its field too, so the first one alone is a whole message."""
        out = {}
        for field, reasons in self.errors.items():
            path = f"{prefix}.{field}" if field else prefix
            out[path] = [f"{path}: {reason}" for reason in reasons]
        return out


def _forbid_extra_everywhere(tp: Any) -> None:
    """Mark a dataclass and the dataclasses nested in its fields as refusing unknown keys (pydantic reads
    ``__pydantic_config__`` from a stdlib dataclass)."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if "__pydantic_config__" in tp.__dict__:
            return
        tp.__pydantic_config__ = _FORBID_EXTRA
        for hint in typing.get_type_hints(tp).values():
            _forbid_extra_everywhere(hint)
    for arg in typing.get_args(tp):
        _forbid_extra_everywhere(arg)


@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    _forbid_extra_everywhere(cls)
    return TypeAdapter(cls)


def parse_config(cls: type[T], data: dict[str, Any] | None, *, what: str = "config") -> T:
    """``cls`` built from JSON-like ``data`` (None or {} gives the defaults); raises ``ConfigError``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError({"": [f"expected an object, got {type(data).__name__}"]}, what)
    try:
        return _adapter(cls).validate_json(json.dumps(data), strict=True)
    except PydanticValidationError as exc:
        errors: dict[str, list[str]] = {}
        for err in exc.errors():
            path = ".".join(str(part) for part in err["loc"])
            message = "unknown field" if err["type"] == "unexpected_keyword_argument" else err["msg"]
            errors.setdefault(path, []).append(message)
        raise ConfigError(errors, what) from None
    except (TypeError, ValueError) as exc:  # not JSON-serialisable input
        raise ConfigError({"": [str(exc)]}, what) from None
