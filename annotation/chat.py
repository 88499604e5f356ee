"""How PrefLab turns chat messages into prompt text (plain Python, no Django).

Imports store a chat prompt's text with ``render_messages``; snapshots, and so reward models trained on
them, see that text. The reward server renders messages it is sent the same way for those models, so a
policy trainer that sends messages is scored on the text the model was trained on.
"""

from __future__ import annotations

from typing import Any

ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def render_messages(messages: list[dict[str, Any]]) -> str:
    """A plain-text rendering of chat messages (a lone user message is just its content)."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(f"{ROLE_LABELS.get(m['role'], m['role'])}: {m['content']}" for m in messages)
