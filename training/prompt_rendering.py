"""What text a prompt becomes before a reward model tokenises it: one Django-free module for training (the
RM card records the rendering its snapshot used) and every serving route (``training.rm_encoding.InputEncoder``).

Renderings (the card's ``encoding.prompt_rendering``):

* ``preflab``: how imports store chat prompts (``annotation.chat.render_messages``): a lone user turn is its
  content, longer chats are ``User: ...`` / ``Assistant: ...`` blocks. Snapshots built from a project use it.
* ``hh_transcript``: Anthropic's ``\\n\\nHuman: ...\\n\\nAssistant:`` transcript (snapshot files written from
  the raw hh-rlhf file by ``training.hh_rlhf_files``); responses start with a space, as there.

Peers do not send that rendering: OpenRLHF and vLLM send the text made by the policy's own chat template, or
the raw hh transcript. ``parse_chat_text`` recognises the hh transcript and the chat-template markers of the
common model families (ChatML ``<|im_start|>``, Llama-3 ``<|start_header_id|>``, Llama-2/Mistral ``[INST]``,
Gemma ``<start_of_turn>``, Phi-3/Zephyr ``<|user|>``) and parses them into messages; ``normalise_prompt``
renders those as training did. Text in no known form is taken to be rendered already and kept as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from annotation.chat import render_messages as render_preflab

PREFLAB = "preflab"
HH_TRANSCRIPT = "hh_transcript"
RENDERINGS = (PREFLAB, HH_TRANSCRIPT)

Messages = list[dict[str, Any]]

# A beginning-of-text token a template may put first.
_LEAD = re.compile(r"^\s*(?:<s>|<bos>|<\|begin_of_text\|>|<\|endoftext\|>)?\s*")
# End-of-turn / end-of-text markers a turn's content may end with, per family.
_ENDS = {
    "chatml": ("<|im_end|>", "<|endoftext|>"),
    "llama3": ("<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"),
    "llama2": ("</s>",),
    "gemma": ("<end_of_turn>", "<eos>"),
    "phi": ("<|end|>", "</s>", "<|endoftext|>"),
    "hh": (),
}


@dataclass(frozen=True)
class ParsedChat:
    """A chat text parsed into messages. A trailing empty assistant turn (a generation prompt such as
    ``<|im_start|>assistant\\n`` or hh's final ``Assistant:``) is dropped."""

    family: str
    messages: Messages

    def split(self) -> tuple[Messages, str] | None:
        """(prompt messages, response) when the text ends with an assistant turn after a prompt."""
        if len(self.messages) >= 2 and self.messages[-1]["role"] == "assistant":
            return self.messages[:-1], self.messages[-1]["content"]
        return None


def _strip_ends(content: str, family: str) -> str:
    content = content.strip()
    changed = True
    while changed:
        changed = False
        for end in _ENDS[family]:
            if content.endswith(end):
                content, changed = content[: -len(end)].rstrip(), True
    return content


def _by_headers(text: str, family: str, header: str, role_map: dict[str, str] | None = None) -> Messages:
    """Turns that each start with a header regex capturing the role; content runs to the next header."""
    pattern = re.compile(header)
    heads = list(pattern.finditer(text))
    messages = []
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        role = m.group(1)
        messages.append(
            {"role": (role_map or {}).get(role, role), "content": _strip_ends(text[m.end() : end], family)}
        )
    return messages


def _chatml(text: str) -> Messages:
    return _by_headers(text, "chatml", r"<\|im_start\|>(\w+)\n?")


def _llama3(text: str) -> Messages:
    return _by_headers(text, "llama3", r"<\|start_header_id\|>(\w+)<\|end_header_id\|>")


def _gemma(text: str) -> Messages:
    return _by_headers(text, "gemma", r"<start_of_turn>(\w+)\n?", {"model": "assistant"})


def _phi(text: str) -> Messages:
    return _by_headers(text, "phi", r"<\|(system|user|assistant)\|>\n?")


_SYS = re.compile(r"^<<SYS>>\n?(.*?)\n?<</SYS>>\s*", re.S)


def _llama2(text: str) -> Messages:
    """``<s>[INST] <<SYS>>\\nsys\\n<</SYS>>\\n\\nuser [/INST] answer </s><s>[INST] user [/INST]``."""
    messages: Messages = []
    pos = 0
    for m in re.finditer(r"\[INST\](.*?)\[/INST\]", text, re.S):
        between = _strip_ends(text[pos : m.start()].replace("<s>", ""), "llama2")
        if between and messages:
            messages.append({"role": "assistant", "content": between})
        user = m.group(1).strip()
        system = _SYS.match(user)
        if system and not messages:
            messages.append({"role": "system", "content": system.group(1).strip()})
            user = user[system.end() :].strip()
        messages.append({"role": "user", "content": user})
        pos = m.end()
    messages.append({"role": "assistant", "content": _strip_ends(text[pos:].replace("<s>", ""), "llama2")})
    return messages


_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def _hh(text: str) -> Messages:
    """As ``annotation.importing.hh_rlhf.parse_transcript`` splits a transcript (contents stripped)."""
    parts = _HH_TURN.split("\n\n" + text.lstrip())
    role = {"Human": "user", "Assistant": "assistant"}
    return [{"role": role[parts[i]], "content": parts[i + 1].strip()} for i in range(1, len(parts), 2)]


_FAMILIES: tuple[tuple[str, Callable[[str], bool], Callable[[str], Messages]], ...] = (
    ("chatml", lambda t: t.startswith("<|im_start|>"), _chatml),
    ("llama3", lambda t: t.startswith("<|start_header_id|>"), _llama3),
    ("gemma", lambda t: t.startswith("<start_of_turn>"), _gemma),
    ("phi", lambda t: re.match(r"<\|(system|user)\|>", t) is not None, _phi),
    ("llama2", lambda t: t.startswith("[INST]"), _llama2),
    ("hh", lambda t: t.startswith("Human:"), _hh),
)


def parse_chat_text(text: str) -> ParsedChat | None:
    """Messages of a chat-template output or an hh transcript; None for text in no known form."""
    body = text[_LEAD.match(text).end() :]
    for family, recognises, parse in _FAMILIES:
        if recognises(body):
            messages = parse(body)
            if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
                messages = messages[:-1]
            if messages:
                return ParsedChat(family, messages)
    return None


def render_prompt(messages: Messages, rendering: str) -> str:
    """Prompt messages as text in ``rendering`` (see the module docstring)."""
    if rendering == PREFLAB:
        return render_preflab(messages) if messages else ""
    if rendering == HH_TRANSCRIPT:
        label = {"user": "Human", "assistant": "Assistant"}
        turns = "".join(
            f"\n\n{label.get(m['role'], m['role'].capitalize())}: {m['content']}" for m in messages
        )
        return turns + "\n\nAssistant:"
    raise ValueError(f"unknown prompt rendering {rendering!r}; expected one of {RENDERINGS}")


def render_response(response: str, rendering: str, family: str | None = None) -> str:
    """A response as training saw it: without the end-of-turn marker of the template its prompt came in;
    after an hh ``Assistant:`` it starts with a space, as the transcript's responses do."""
    if family is not None:
        response = _strip_ends(response, family)
    if rendering == HH_TRANSCRIPT and response and not response[0].isspace():
        response = " " + response
    return response


def normalise_prompt(prompt: str | Messages, rendering: str) -> tuple[str, str | None]:
    """(the prompt in ``rendering``, the chat family it was recognised as, or None)."""
    if isinstance(prompt, list):
        return render_prompt(prompt, rendering), None
    parsed = parse_chat_text(prompt)
    if parsed is None:
        return prompt, None
    return render_prompt(parsed.messages, rendering), parsed.family


def normalise_pair(prompt: str | Messages, response: str, rendering: str) -> tuple[str, str]:
    """A (prompt, response) as received -> as training rendered it."""
    text, family = normalise_prompt(prompt, rendering)
    return text, render_response(response, rendering, family)


def split_chat_text(text: str, rendering: str) -> tuple[str, str] | None:
    """One full conversation text (``/classify``, OpenRLHF's query without its prompt) -> the (prompt,
    response) training would have seen, when the text is a known chat form ending with an assistant turn."""
    parsed = parse_chat_text(text)
    if parsed is None or (split := parsed.split()) is None:
        return None
    messages, response = split
    return render_prompt(messages, rendering), render_response(response, rendering)
