"""Test helper: a ready DatasetSnapshot row with artifact files in the snapshot artifact contract
(``trl/{split}.jsonl``, line-aligned ``meta/{split}.jsonl``, ``card.json``), written by hand so these tests
do not depend on the snapshot builder."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from django.conf import settings

POLITE = ["Sure, happy to help: here is a clear answer.", "Of course! Here are the steps, explained kindly."]
RUDE = ["No. Figure it out yourself.", "Go away, that is a stupid question."]
PROMPTS = [
    "How do I bake bread?",
    "What is the capital of France?",
    "Tell me a joke.",
    "How do I fix a bike?",
]


def synthetic_pairs(n: int, seed: int = 0, long_prompt_every: int = 0) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    rows, meta = [], []
    for i in range(n):
        prompt = rng.choice(PROMPTS)
        if long_prompt_every and i % long_prompt_every == 0:
            prompt = ("Earlier we talked about many things. " * 30) + prompt
        rows.append({"prompt": prompt + " ", "chosen": rng.choice(POLITE), "rejected": rng.choice(RUDE)})
        meta.append(
            {
                "prompt_id": i,
                "chosen_candidate_id": 2 * i,
                "rejected_candidate_id": 2 * i + 1,
                "chosen_model": "model-a" if i % 2 else "model-b",
                "rejected_model": "model-c",
                "judgment_ids": [i],
                "label_type": "pref",
            }
        )
    return rows, meta


def write_snapshot(project, splits: dict[str, tuple[list[dict], list[dict]]], name: str = "fixture"):
    from training.models import DatasetSnapshot, JobStatus

    version = DatasetSnapshot.objects.filter(name=name).count() + 1
    root = Path(settings.ARTIFACT_DIR) / "snapshots" / f"{name}-v{version}"
    digest = hashlib.sha256()
    for split in ("train", "validation", "test"):
        rows, meta = splits.get(split, ([], []))
        for sub, items in (("trl", rows), ("meta", meta)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            text = "".join(json.dumps(item) + "\n" for item in items)
            (root / sub / f"{split}.jsonl").write_text(text, encoding="utf-8")
            digest.update(text.encode())
    counts = {split: len(splits.get(split, ([], []))[0]) for split in ("train", "validation", "test")}
    (root / "card.json").write_text(json.dumps({"counts": counts}), encoding="utf-8")
    snapshot = DatasetSnapshot.objects.create(
        name=name,
        version=version,
        status=JobStatus.SUCCEEDED,
        content_hash=digest.hexdigest(),
        artifact_dir=str(root),
        counts=counts,
    )
    snapshot.projects.add(project)
    return snapshot


def pref_and_both_bad_rows() -> tuple[list[dict], list[dict]]:
    """One preference row and one both-bad row (with their meta rows)."""
    rows = [
        {"prompt": "How do I bake bread? ", "chosen": "Knead, proof, bake at 230C.", "rejected": "No."},
        {"prompt": "Tell me a joke. ", "chosen": "Bad joke one.", "rejected": "Bad joke two."},
    ]
    meta = [{"prompt_id": 1, "label_type": "pref"}, {"prompt_id": 2, "label_type": "both_bad"}]
    return rows, meta
