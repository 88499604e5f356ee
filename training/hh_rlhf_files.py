"""Write the shared hh-rlhf file as files in the snapshot artifact contract (``trl/``, ``meta/``,
``card.json``) with a deterministic split, for the MiniLM slow test, the demo and the training benchmark,
without going through annotation and judgments."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

MARK = "\n\nAssistant:"


def split_hh(chosen: str, rejected: str) -> dict | None:
    """Prompt = the shared text up to and including the last shared "Assistant:" marker; None if unusable."""
    shared = os.path.commonprefix([chosen, rejected])
    cut = shared.rfind(MARK)
    if cut < 0:
        return None
    prompt = chosen[: cut + len(MARK)]
    c, r = chosen[len(prompt) :], rejected[len(prompt) :]
    if not c.strip() or not r.strip() or c == r:
        return None
    return {"prompt": prompt, "chosen": c, "rejected": r}


def split_as_imported(chosen: str, rejected: str) -> dict | None:
    """The pair as a project import stores it (``annotation.importing.hh_rlhf``): the prompt rendered by
    ``annotation.chat.render_messages``, stripped responses; None if unusable."""
    from annotation.chat import render_messages
    from annotation.importing.errors import ImportFileError
    from annotation.importing.hh_rlhf import split_transcripts

    try:
        split = split_transcripts(chosen, rejected)
    except ImportFileError:
        return None
    if not split.chosen or not split.rejected or split.chosen == split.rejected:
        return None
    return {"prompt": render_messages(split.messages), "chosen": split.chosen, "rejected": split.rejected}


def hh_rlhf_pairs(
    path: str | Path, limit: int | None = None, prompt_rendering: str = "hh_transcript"
) -> list[dict]:
    """TRL rows {prompt, chosen, rejected}; unusable ones skipped. ``hh_transcript``: plain transcript text
    (the prompt ends with "Assistant:"); ``preflab``: as a project import stores them."""
    split = split_as_imported if prompt_rendering == "preflab" else split_hh
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            row = split(record["chosen"], record["rejected"])
            if row is not None:
                rows.append(row)
            if limit and len(rows) >= limit:
                break
    return rows


def split_of(row: dict, val_share: float, test_share: float) -> str:
    """Deterministic split by a hash of the prompt (pairs of one prompt stay together)."""
    h = int(hashlib.sha256(row["prompt"].encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test_share else "validation" if h < test_share + val_share else "train"


def write_hh_rlhf_snapshot_files(
    path: str | Path,
    root: str | Path,
    *,
    val_share: float = 0.1,
    test_share: float = 0.1,
    limit: int | None = None,
    prompt_rendering: str = "hh_transcript",
) -> tuple[Path, str, dict[str, int]]:
    """Write the files (prompts in ``prompt_rendering``, recorded in ``card.json``); returns (root, content
    hash, counts per split)."""
    root = Path(root)
    splits: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for row in hh_rlhf_pairs(path, limit, prompt_rendering):
        splits[split_of(row, val_share, test_share)].append(row)
    digest = hashlib.sha256()
    for split, rows in splits.items():
        for sub in ("trl", "meta"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        trl = "".join(json.dumps(r) + "\n" for r in rows)
        meta = "".join(json.dumps({"source": "hh-rlhf-harmless", "label_type": "pref"}) + "\n" for _ in rows)
        (root / "trl" / f"{split}.jsonl").write_text(trl, encoding="utf-8")
        (root / "meta" / f"{split}.jsonl").write_text(meta, encoding="utf-8")
        digest.update(trl.encode())
    counts = {k: len(v) for k, v in splits.items()}
    (root / "card.json").write_text(
        json.dumps({"source": str(path), "counts": counts, "prompt_rendering": prompt_rendering}),
        encoding="utf-8",
    )
    return root, digest.hexdigest(), counts
