"""Reading a ready snapshot's files: the TRL rows of a split, their line-aligned meta rows, and the rows that
are preferences (what reward models and SFT learn from)."""

from __future__ import annotations

import json
from pathlib import Path

from training.evaluation import label_type

SPLITS = ("train", "validation", "test")


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_snapshot_split(artifact_dir: str | Path, split: str) -> tuple[list[dict], list[dict]]:
    """The TRL rows and the line-aligned meta rows of one split of a ready snapshot."""
    root = Path(artifact_dir)
    rows = read_jsonl(root / "trl" / f"{split}.jsonl")
    meta = read_jsonl(root / "meta" / f"{split}.jsonl")
    if meta and len(meta) != len(rows):
        raise ValueError(f"snapshot {root}: meta/{split}.jsonl is not line-aligned with trl/{split}.jsonl")
    return rows, meta or [{} for _ in rows]


def snapshot_prompt_rendering(artifact_dir: str | Path) -> str:
    """How the snapshot's prompts are rendered (``training.prompt_rendering``): ``card.json``'s
    ``prompt_rendering``, or ``preflab`` (project snapshots: prompts as imports store them)."""
    path = Path(artifact_dir) / "card.json"
    card = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return str(card.get("prompt_rendering") or "preflab")


def preference_rows(rows: list[dict], meta: list[dict]) -> tuple[list[dict], list[dict], int]:
    """The rows whose meta ``label_type`` is "pref" (a missing label means pref), their meta, and how many
    neutral rows ("tie", "both_bad") were left out.

    Neutral rows carry an arbitrary (lo, hi) orientation: as a Bradley-Terry pair or an SFT demonstration
    they would teach a preference (or an answer) the annotators did not give. There is no tie-aware loss
    yet, so ``margin_zero`` and ``tie_aware`` snapshots only keep them for evaluation and analysis.
    """

    kept = [i for i, m in enumerate(meta) if label_type(m) == "pref"]
    return [rows[i] for i in kept], [meta[i] for i in kept], len(rows) - len(kept)


def split_has_preferences(artifact_dir: str | Path, split: str) -> bool:
    """Whether a ready snapshot's split holds at least one preference row (what DPO and SFT learn from).

    Reads the meta file only up to the first preference row; a split without meta rows counts every row
    as a preference, as ``read_snapshot_split`` does."""
    root = Path(artifact_dir)
    rows, meta = root / "trl" / f"{split}.jsonl", root / "meta" / f"{split}.jsonl"
    if not rows.exists():
        return False
    if not meta.exists() or meta.stat().st_size == 0:
        with rows.open(encoding="utf-8") as fh:
            return any(line.strip() for line in fh)
    with meta.open(encoding="utf-8") as fh:
        return any(line.strip() and label_type(json.loads(line)) == "pref" for line in fh)
