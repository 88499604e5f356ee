"""Splits are keyed on prompt content: the same prompt text in two projects lands in one split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotation.models import Judgment, Role
from tests.factories import add_member, make_project, make_prompt, make_task, make_user
from training.datasets.services import snapshot_build, snapshot_create

SPLITS = ("train", "validation", "test")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.mark.django_db
def test_same_prompt_text_in_two_projects_lands_in_one_split():
    engineer = make_user(Role.ENGINEER)
    annotator = make_user(Role.ANNOTATOR)
    projects = [make_project(members=[(engineer, Role.ENGINEER)]) for _ in range(2)]
    for project in projects:
        add_member(project, annotator)
        for i in range(8):  # the same 8 prompt texts imported into both projects
            prompt = make_prompt(project, f"Shared question {i}: how does thing {i} work?")
            task = make_task(project, prompt=prompt, a=f"Good answer {i} p{project.pk}", b=f"Bad {i}")
            Judgment.objects.create(task=task, annotator=annotator, choice="A")
    spec = {
        "projects": [p.pk for p in projects],
        "split": {"train": 0.5, "validation": 0.0, "test": 0.5},
    }
    snap = snapshot_build(snapshot_id=snapshot_create(user=engineer, spec=spec, enqueue=False).pk)
    root = Path(snap.artifact_dir)
    texts = {s: {r["prompt"] for r in read_jsonl(root / "trl" / f"{s}.jsonl")} for s in SPLITS}
    assert texts["train"] and texts["test"]
    assert texts["train"].isdisjoint(texts["test"])
    assert len(texts["train"] | texts["test"]) == 8 and snap.counts["rows_total"] == 16
    assert snap.counts["prompts"] == {"train": 4, "validation": 0, "test": 4}
