"""Neutral rows (tie, both-bad) carry no preference: they stay out of accuracy, SFT demonstrations and the
Bradley-Terry loss; rows without a label count as preferences."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import make_project
from tests.training.runs.snapshot_files import pref_and_both_bad_rows
from training.evaluation import evaluate_pairs


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
    snapshot = write_snapshot(make_project(), {"train": pref_and_both_bad_rows()})
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
