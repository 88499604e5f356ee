"""Safe Markdown for model output and guidelines: raw HTML is shown as text, never rendered.

Python-Markdown's raw-HTML handlers are removed (so ``<script>`` becomes visible text) and the result is
sanitised again with nh3 (allow-listed tags, http/https/mailto links only) as a second wall.
"""

from __future__ import annotations

import re
import threading

import markdown as md_lib
import nh3
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "b", "i", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a", "del",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "th": {"align"}, "td": {"align"}}
_local = threading.local()


def _converter() -> md_lib.Markdown:
    conv = getattr(_local, "md", None)
    if conv is None:
        conv = md_lib.Markdown(extensions=["fenced_code", "tables", "sane_lists", "nl2br"])
        conv.preprocessors.deregister("html_block")
        conv.inlinePatterns.deregister("html")
        _local.md = conv
    return conv


def render_markdown(text: str | None) -> SafeString:
    """Markdown -> sanitised HTML, safe to insert in a page."""
    html = _converter().reset().convert(text or "")
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above


_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant|User|System):\s?", re.MULTILINE)


def prompt_turns(text: str, messages: list | None) -> list[dict]:
    """Chat turns of a prompt: its ``messages`` if present, else hh-rlhf style "Human:/Assistant:" text."""
    if messages:
        return [
            {"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
            for m in messages
            if isinstance(m, dict)
        ]
    parts = _TURN.split(text or "")
    if len(parts) < 3:
        return [{"role": "", "content": text or ""}]
    turns = [{"role": "", "content": parts[0]}] if parts[0].strip() else []
    for role, content in zip(parts[1::2], parts[2::2], strict=False):
        turns.append({"role": role.lower(), "content": content.strip()})
    return turns
