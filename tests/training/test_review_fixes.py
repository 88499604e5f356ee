"""Regression tests for review findings: neutral rows kept out of evaluation, SFT and the Bradley-Terry loss,
splits keyed on prompt content across projects, and RM normalisation statistics from the train split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from annotation.models import Judgment, Role
from tests.factories import add_member, make_project, make_prompt, make_task, make_user
from training.evaluation import evaluate_pairs
from training.services.snapshots import snapshot_build, snapshot_create

SPLITS = ("train", "validation", "test")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_evaluation_leaves_both_bad_rows_out_of_accuracy():
    rows = [{"chosen": "good", "rejected": "bad"}, {"chosen": "meh", "rejected": "ugh"}]
    meta = [{"label_type": "pref"}, {"label_type": "both_bad"}]
    # The both_bad row's orientation is arbitrary: scoring it "wrong" must not lower the accuracy.
    report = evaluate_pairs([2.0, 0.0], [1.0, 5.0], rows, meta)
    assert report["n"] == 1
    assert report["accuracy"] == pytest.approx(1.0)
    assert report["n_both_bad"] == 1 and report["n_ties"] == 0
    assert sum(b["count"] for b in report["reliability"]) == 2  # one pair, both orders


def test_evaluation_without_label_type_counts_rows_as_preferences():
    rows = [{"chosen": "good", "rejected": "bad"}] * 2
    report = evaluate_pairs([2.0, 0.0], [1.0, 1.0], rows, [{}, {"source": "x"}])
    assert report["n"] == 2 and report["accuracy"] == pytest.approx(0.5)


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


def _pref_and_both_bad_rows() -> tuple[list[dict], list[dict]]:
    rows = [
        {"prompt": "How do I bake bread? ", "chosen": "Knead, proof, bake at 230C.", "rejected": "No."},
        {"prompt": "Tell me a joke. ", "chosen": "Bad joke one.", "rejected": "Bad joke two."},
    ]
    meta = [{"prompt_id": 1, "label_type": "pref"}, {"prompt_id": 2, "label_type": "both_bad"}]
    return rows, meta


@pytest.mark.django_db
def test_sft_on_a_snapshot_uses_only_preference_chosen_answers(monkeypatch):
    from tests.training.runs.snapshot_files import write_snapshot
    from training import jobs
    from training.models import JobStatus, RunKind
    from training.policy import (
        executors,  # noqa: F401  (registers the executors)
        sft,
    )
    from training.policy.services import policy_run_create

    seen: list[dict] = []

    def fake_train_sft(*, demonstrations, output_dir, **_):
        seen.extend(demonstrations)
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        return {
            "examples": len(demonstrations),
            "steps": 1,
            "train_loss": 0.0,
            "train_seconds": 0.0,
            "conversational": False,
        }

    monkeypatch.setattr(sft, "train_sft", fake_train_sft)
    snapshot = write_snapshot(make_project(), {"train": _pref_and_both_bad_rows()})
    run = policy_run_create(
        kind=RunKind.SFT, base_model="tiny", snapshot=snapshot, enqueue=False,
        config={"algorithm": {"source": "snapshot"}},
    )  # fmt: skip
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.status_reason
    assert [d["response"] for d in seen] == ["Knead, proof, bake at 230C."]
    assert "left out 1 tie / both-bad rows" in run.log_tail


def test_preference_rows_keep_pref_and_unlabelled_rows():
    from training.datasets.reader import preference_rows

    rows = [{"i": 0}, {"i": 1}, {"i": 2}, {"i": 3}]
    meta = [{"label_type": "pref"}, {"label_type": "tie"}, {}, {"label_type": "both_bad"}]
    kept, kept_meta, neutral = preference_rows(rows, meta)
    assert [r["i"] for r in kept] == [0, 2] and kept_meta == [meta[0], meta[2]] and neutral == 2


@pytest.mark.django_db
def test_reward_card_statistics_come_from_the_train_split(tiny_reward_model_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tests.training.runs.conftest import TINY_CONFIG
    from tests.training.runs.snapshot_files import synthetic_pairs, write_snapshot
    from training import jobs
    from training.datasets.reader import read_snapshot_split
    from training.models import JobStatus, ModelEvaluation, RewardModel
    from training.rm_encoding import score_split
    from training.services.runs import reward_run_create

    train_rows, train_meta = synthetic_pairs(16, seed=1)
    neutral_rows, neutral_meta = _pref_and_both_bad_rows()
    train = (train_rows + neutral_rows[1:], train_meta + neutral_meta[1:])  # 16 prefs + 1 both_bad
    test = (
        [{**r, "prompt": "Something else entirely. "} for r in synthetic_pairs(8)[0]],
        synthetic_pairs(8)[1],
    )
    snapshot = write_snapshot(make_project(), {"train": train, "test": test})
    run = reward_run_create(
        snapshot=snapshot, base_model=str(tiny_reward_model_dir), config=TINY_CONFIG, enqueue=False
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, (run.status_reason, run.log_tail)
    # The both_bad row is left out of the Bradley-Terry loss: 16 preference pairs, 4 steps of 4.
    assert run.summary["data"]["train"]["pairs"] == 16
    assert run.summary["data"]["train"]["neutral_dropped"] == 1 and run.step == 4

    rm = RewardModel.objects.get(run=run)
    model = AutoModelForSequenceClassification.from_pretrained(rm.artifact_dir)
    tokenizer = AutoTokenizer.from_pretrained(rm.artifact_dir)

    def split_scores(split: str) -> list[float]:
        rows, meta = read_snapshot_split(snapshot.artifact_dir, split)
        r_c, r_r, *_ = score_split(model, tokenizer, rows, meta, max_length=TINY_CONFIG["max_length"])
        return [*r_c, *r_r]

    train_scores, test_scores = split_scores("train"), split_scores("test")
    assert len(train_scores) == 34
    assert abs(float(np.mean(train_scores)) - float(np.mean(test_scores))) > 1e-4  # the splits differ
    assert rm.reward_mean == pytest.approx(float(np.mean(train_scores)), rel=1e-4, abs=1e-5)
    assert rm.reward_std == pytest.approx(float(np.std(train_scores)), rel=1e-4, abs=1e-5)
    card = json.loads((Path(rm.artifact_dir) / "preflab_card.json").read_text())
    assert card["reward_mean"] == rm.reward_mean and card["reward_stats"] == {"split": "train", "pairs": 17}
    # The evaluation itself is still on the test split.
    evaluation = ModelEvaluation.objects.get(reward_model=rm)
    assert evaluation.split == "test" and evaluation.metrics["n"] == 8
    assert evaluation.metrics["reward_mean"] == pytest.approx(float(np.mean(test_scores)), rel=1e-4, abs=1e-5)
