"""Fixtures for import tests: a project on PostgreSQL and writers for small input files in every format."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from annotation.models import Candidate, ComparisonTask, ImportBatch, Judgment, Prompt
from tests.factories import make_project


@pytest.fixture
def project(db, require_postgres):
    return make_project(name="import-test")


def row_counts(project) -> dict[str, int]:
    """What an import wrote to a project (a bad file must leave all of these at zero)."""
    return {
        "prompts": Prompt.objects.filter(project=project).count(),
        "candidates": Candidate.objects.filter(prompt__project=project).count(),
        "tasks": ComparisonTask.objects.filter(project=project).count(),
        "judgments": Judgment.objects.filter(task__project=project).count(),
        "batches": ImportBatch.objects.filter(project=project).count(),
    }


def write_jsonl(path: Path, rows: list, *, gz: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()})
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_hf_dataset(path: Path, rows: list[dict]) -> Path:
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


# Columnar formats (Parquet, HF) need one type per column, so both rows use chat prompts and response objects.
RESPONSES_ROWS = [
    {
        "id": "p1",
        "prompt": [{"role": "user", "content": "Name a fruit."}],
        "responses": [
            {"text": "Apple.", "model": "m-a"},
            {"text": "A banana is a fruit.", "model": "m-b"},
            {"text": "Cherry!", "model": "m-c"},
        ],
    },
    {
        "id": "p2",
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}],
        "responses": [
            {"text": "Hi.", "model": "m-a"},
            {"text": "Hello there.", "model": "m-b"},
            {"text": "Hey!", "model": "m-c"},
            {"text": "Greetings.", "model": "m-d"},
        ],
    },
]
PAIRS_ROWS = [
    {
        "prompt": "Is the sky blue?",
        "chosen": "Yes, on a clear day.",
        "rejected": "No.",
        "chosen_model": "good",
    },
    {"prompt": "2+2?", "chosen": "4", "rejected": "5", "rejected_model": "bad"},
    {"prompt": "2+2?", "chosen": "Four.", "rejected": "5"},
]
HH_ROWS = [
    {
        "chosen": "\n\nHuman: How do I bake bread?\n\nAssistant: Mix flour, water, salt and yeast, then knead.",
        "rejected": "\n\nHuman: How do I bake bread?\n\nAssistant: Buy it.",
    },
    {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke.\n\nAssistant: "
        "Why did the bicycle fall over? It was two tired.",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke.\n\nAssistant: No.",
    },
]
