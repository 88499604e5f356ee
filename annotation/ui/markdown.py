"""Safe Markdown for model output and guidelines: raw HTML is shown as text, never rendered.

Python-Markdown's raw-HTML handlers are removed (so ``<script>`` becomes visible text) and the result is
sanitised again with nh3 (allow-listed tags, http/https/mailto links only) as a second wall. Fenced code
is highlighted server-side with Pygments (only its short token classes survive nh3), and LaTeX (``$..$``,
``$$..$$``, ``\\(..\\)``, ``\\[..\\]``) is kept verbatim as escaped text in ``<span class="math">`` for the
page's vendored KaTeX to typeset in the browser.
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as etree
from collections import Counter

import markdown as md_lib
import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor
from markdown.util import AtomicString
from pygments.token import STANDARD_TYPES

from annotation.chat import ROLE_LABELS

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "b", "i", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a", "del",
    "div", "span",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "th": {"align", "style"},
    "td": {"align", "style"},
}
_PYGMENTS_CLASSES = {c for c in STANDARD_TYPES.values() if c}
# Only these class values pass nh3: Pygments' token classes, the code box and the math markers.
ALLOWED_CLASSES = {
    "div": {"codehilite"},
    "span": _PYGMENTS_CLASSES | {"math", "math-display"},
}
_local = threading.local()

# Math: display first, then inline. Inline ``$..$`` follows pandoc's rule (no space inside the dollars,
# no digit right after the closing one) so "$5 and $10" stays text.
_MATH = (
    r"(?P<dd>\$\$(?P<d1>.+?)\$\$)"
    r"|(?P<bd>\\\[(?P<d2>.+?)\\\])"
    r"|(?P<bi>\\\((?P<i1>.+?)\\\))"
    r"|(?P<si>\$(?P<i2>[^\s$](?:[^$]*?[^\s$\\])?)\$(?!\d))"
)


class _MathProcessor(InlineProcessor):
    def handleMatch(self, m, data):  # noqa: N802 - Python-Markdown's hook name
        display = m.group("dd") or m.group("bd")
        tex = m.group("d1") or m.group("d2") or m.group("i1") or m.group("i2")
        el = etree.Element("span")
        el.set("class", "math-display" if display else "math")
        el.text = AtomicString(tex)  # kept as text: no emphasis or escapes inside, escaped on output
        return el, m.start(0), m.end(0)


class _MathExtension(Extension):
    def extendMarkdown(self, md):  # noqa: N802 - Python-Markdown's hook name
        # After backticks (190, so `$x$` stays code) and before backslash escapes (180) and emphasis.
        md.inlinePatterns.register(_MathProcessor(_MATH, md), "preflab_math", 185)


def _converter() -> md_lib.Markdown:
    conv = getattr(_local, "md", None)
    if conv is None:
        conv = md_lib.Markdown(
            extensions=["fenced_code", "codehilite", "tables", "sane_lists", "nl2br", _MathExtension()],
            extension_configs={"codehilite": {"guess_lang": False, "css_class": "codehilite"}},
        )
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
        allowed_classes=ALLOWED_CLASSES,
        filter_style_properties={"text-align"},  # table column alignment, nothing else
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above


_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant|User|System):\s?", re.MULTILINE)
_ROLE_NAMES = {"human": "user"}


def prompt_turns(text: str, messages: list | None) -> list[dict]:
    """Chat turns of a prompt: its ``messages`` if present, else hh-rlhf style "Human:/Assistant:" text."""
    if messages:
        return [
            _turn(str(m.get("role", "user")), str(m.get("content", "")))
            for m in messages
            if isinstance(m, dict)
        ]
    parts = _TURN.split(text or "")
    if len(parts) < 3:
        return [_turn("", text or "")]
    turns = [_turn("", parts[0])] if parts[0].strip() else []
    for role, content in zip(parts[1::2], parts[2::2], strict=False):
        turns.append(_turn(role.lower(), content.strip()))
    return turns


def _turn(role: str, content: str) -> dict:
    return {"role": role, "label": ROLE_LABELS.get(role, role.capitalize()), "content": content}


def split_final_turn(turns: list[dict]) -> tuple[list[dict], list[dict]]:
    """(earlier turns, the turns from the last user turn on): the question being answered stays in view
    while the conversation before it can fold away."""
    for i in range(len(turns) - 1, -1, -1):
        if _ROLE_NAMES.get(turns[i]["role"], turns[i]["role"]) in ("user", ""):
            return turns[:i], turns[i:]
    return turns[:-1], turns[-1:]


_WORD = re.compile(r"\w+")


def shared_word_ratio(a: str, b: str) -> float:
    """Share of words the two texts have in common (multiset overlap over the longer one), 0..1: a word
    diff only helps when the responses share text."""
    wa, wb = Counter(_WORD.findall(a.lower())), Counter(_WORD.findall(b.lower()))
    longest = max(sum(wa.values()), sum(wb.values()))
    if not longest:
        return 1.0
    return sum((wa & wb).values()) / longest
