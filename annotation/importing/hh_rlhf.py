"""Splitting Anthropic hh-rlhf ``chosen``/``rejected`` transcripts into a shared chat prompt and two responses.

Both sides of a record normally share every turn but the final Assistant turn. The prompt is the longest
run of shared turns that ends with a Human turn; each side's remaining turns are its response (a few real
records have two Assistant turns in a row, joined with a blank line). A final Assistant turn can be empty
in the real data (a truncated transcript); the caller decides what to do with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from annotation.importing.errors import ImportFileError

_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLE = {"Human": "user", "Assistant": "assistant"}


@dataclass(frozen=True)
class HHSplit:
    messages: list[dict]
    chosen: str
    rejected: str


def parse_transcript(text: str) -> list[tuple[str, str]]:
    """``"\\n\\nHuman: hi\\n\\nAssistant: hello"`` -> ``[("user", "hi"), ("assistant", "hello")]``."""
    parts = _TURN.split(text if text.startswith("\n\n") else "\n\n" + text)
    if parts[0].strip() or len(parts) < 3:
        raise ValueError("expected turns like '\\n\\nHuman: ...\\n\\nAssistant: ...'")
    return [(_ROLE[parts[i]], parts[i + 1].strip()) for i in range(1, len(parts), 2)]


def _response(turns: list[tuple[str, str]]) -> str:
    if all(role == "assistant" for role, _ in turns):
        return "\n\n".join(content for _, content in turns)
    # The sides diverged before a later Human turn: keep the whole continuation, labelled.
    return "\n\n".join(f"{'Human' if r == 'user' else 'Assistant'}: {c}" for r, c in turns)


def split_transcripts(chosen: str, rejected: str, *, location: str = "") -> HHSplit:
    turns = {}
    for key, text in (("chosen", chosen), ("rejected", rejected)):
        try:
            turns[key] = parse_transcript(text)
        except ValueError as exc:
            raise ImportFileError(f"not an hh-rlhf transcript: {exc}", location=location, field=key) from exc
    a, b = turns["chosen"], turns["rejected"]
    shared = 0
    while shared < min(len(a), len(b)) and a[shared] == b[shared]:
        shared += 1
    while shared and a[shared - 1][0] != "user":
        shared -= 1
    if not shared:
        raise ImportFileError(
            "the two transcripts share no Human turn to use as the prompt",
            location=location,
            field="rejected",
        )
    if len(a) == shared or len(b) == shared:
        key = "chosen" if len(a) == shared else "rejected"
        raise ImportFileError(
            "the transcript has no Assistant turn after the prompt", location=location, field=key
        )
    messages = [{"role": role, "content": content} for role, content in a[:shared]]
    return HHSplit(messages, _response(a[shared:]), _response(b[shared:]))
