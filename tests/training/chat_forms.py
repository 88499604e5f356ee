"""What peers send a reward model for one chat prompt: the hh transcript and the text of the common chat
templates (written out as each family's template renders it, generation prompt included), and held-out
hh-rlhf pairs from the shared file as the importer splits them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def _role(m: dict, assistant: str = "assistant") -> str:
    return assistant if m["role"] == "assistant" else m["role"]


def hh_transcript(messages: list[dict]) -> str:
    label = {"user": "Human", "assistant": "Assistant"}
    return "".join(f"\n\n{label[m['role']]}: {m['content']}" for m in messages) + "\n\nAssistant:"


def chatml(messages: list[dict]) -> str:
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


def llama3(messages: list[dict]) -> str:
    turns = "".join(
        f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}<|eot_id|>" for m in messages
    )
    return "<|begin_of_text|>" + turns + "<|start_header_id|>assistant<|end_header_id|>\n\n"


def llama2(messages: list[dict]) -> str:
    """Llama-2 chat / Mistral-Instruct: ``<s>[INST] user [/INST] answer </s><s>[INST] ...``."""
    out, system = "", ""
    if messages and messages[0]["role"] == "system":
        system, messages = f"<<SYS>>\n{messages[0]['content']}\n<</SYS>>\n\n", messages[1:]
    for m in messages:
        if m["role"] == "user":
            out += f"<s>[INST] {system}{m['content']} [/INST]"
            system = ""
        else:
            out += f" {m['content']} </s>"
    return out


def gemma(messages: list[dict]) -> str:
    turns = "".join(f"<start_of_turn>{_role(m, 'model')}\n{m['content']}<end_of_turn>\n" for m in messages)
    return "<bos>" + turns + "<start_of_turn>model\n"


def phi3(messages: list[dict]) -> str:
    return "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in messages) + "<|assistant|>\n"


def zephyr(messages: list[dict]) -> str:
    return "".join(f"<|{m['role']}|>\n{m['content']}</s>\n" for m in messages) + "<|assistant|>\n"


TEMPLATES = {
    "chatml": chatml,
    "llama3": llama3,
    "llama2": llama2,
    "gemma": gemma,
    "phi3": phi3,
    "zephyr": zephyr,
}
#: The end-of-turn text each template closes an assistant turn with (a peer's response may carry it).
END_OF_TURN = {
    "chatml": "<|im_end|>",
    "llama3": "<|eot_id|>",
    "llama2": " </s>",
    "gemma": "<end_of_turn>",
    "phi3": "<|end|>",
    "zephyr": "</s>",
}


def held_out_pairs(path: Path, n: int = 100) -> list[dict]:
    """The first ``n`` pairs of the shared file's test split (``training.hh_rlhf_files.split_of``), each as
    {"messages", "chosen", "rejected"} (the importer's split) and {"raw_prompt", "raw_chosen",
    "raw_rejected"} (the raw transcript's common prefix and the two continuations)."""
    from annotation.importing.errors import ImportFileError
    from annotation.importing.hh_rlhf import parse_transcript, split_transcripts
    from training.hh_rlhf_files import split_hh, split_of

    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            raw = split_hh(record["chosen"], record["rejected"])
            if raw is None or split_of(raw, 0.1, 0.1) != "test":
                continue
            try:
                split = split_transcripts(record["chosen"], record["rejected"])
            except ImportFileError:
                continue
            raw_turns = [{"role": r, "content": c} for r, c in parse_transcript(raw["prompt"])][:-1]
            if (
                raw_turns != split.messages
                or raw["chosen"].strip() != split.chosen
                or raw["rejected"].strip() != split.rejected
            ):
                continue  # the two splits disagree (sides that diverge after a later Human turn): not one pair
            out.append(
                {
                    "messages": split.messages,
                    "chosen": split.chosen,
                    "rejected": split.rejected,
                    "raw_prompt": raw["prompt"],
                    "raw_chosen": raw["chosen"],
                    "raw_rejected": raw["rejected"],
                }
            )
            if len(out) >= n:
                break
    return out
