"""Building snapshots from judgments: the artifact contract, hashes, prompt splits, filters, tie and
margin modes, adjudication, and cleanup when a build fails."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from annotation.models import Adjudication, AnnotatorFlag, FlagStatus, TaskKind
from tests.factories import make_candidate, make_prompt, make_task
from tests.training.snapshots.conftest import judge
from training.datasets.selectors import annotator_pseudonym, snapshot_card, snapshot_split_path
from training.datasets.services import snapshot_build, snapshot_create
from training.models import DatasetSnapshot, JobStatus

SPLITS = ("train", "validation", "test")


def build(user, project, **spec) -> DatasetSnapshot:
    snapshot = snapshot_create(user=user, spec={"projects": [project.pk], **spec}, name="t", enqueue=False)
    return snapshot_build(snapshot_id=snapshot.pk)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def all_rows(snapshot, folder="trl") -> list[dict]:
    return [row for s in SPLITS for row in read_jsonl(Path(snapshot.artifact_dir) / folder / f"{s}.jsonl")]


@pytest.mark.django_db
def test_build_writes_the_artifact_contract(engineer, annotators, judged_project):
    snap = build(engineer, judged_project)
    assert snap.status == JobStatus.SUCCEEDED, snap.error
    root = Path(snap.artifact_dir)
    for folder in ("trl", "trl_conversational", "meta"):
        for split in SPLITS:
            assert (root / folder / f"{split}.jsonl").is_file()
    for split in SPLITS:
        assert (root / "parquet" / f"{split}.parquet").is_file()
    assert (root / "hf" / "dataset_dict.json").is_file()
    # Standard form: exactly prompt/chosen/rejected (margin off, ties dropped); majority picks A (2 of 3).
    rows = all_rows(snap)
    assert len(rows) == 12
    assert all(set(r) == {"prompt", "chosen", "rejected"} for r in rows)
    assert all(r["chosen"].startswith("Good detailed answer") for r in rows)
    metas = all_rows(snap, "meta")
    assert len(metas) == 12 and all(m["label_type"] == "pref" and len(m["judgment_ids"]) == 3 for m in metas)
    assert all(m["chosen_model"] == "model-a" and m["rejected_model"] == "model-b" for m in metas)
    conv = all_rows(snap, "trl_conversational")
    assert conv[0]["prompt"][0]["role"] == "user" and conv[0]["chosen"][0]["role"] == "assistant"
    # Lineage: every judgment id, and votes pseudonymised.
    ids = (root / "judgment_ids.txt").read_text().split()
    assert len(ids) == 36 and snap.counts["judgments_used"] == 36
    votes = read_jsonl(root / "votes.jsonl")
    assert len(votes) == 36
    pseudonyms = {v["annotator"] for v in votes}
    assert pseudonyms == {annotator_pseudonym(u.pk) for u in annotators}
    assert all(re.fullmatch(r"[0-9a-f]{16}", p) for p in pseudonyms)
    assert not any(u.username in (root / "votes.jsonl").read_text() for u in annotators)
    card = snapshot_card(snap)
    assert card["content_hash"] == snap.content_hash and len(snap.content_hash) == 64
    assert card["counts"]["rows_total"] == 12 and card["class_balance"]["label_type"]["pref"] == 12
    assert json.loads((root / "card.json").read_text())["judgment_ids_hash"] == snap.judgment_ids_hash
    assert snap.code_version
    assert snapshot_split_path(snap, "train") == root / "trl" / "train.jsonl"
    assert snapshot_split_path(snap, "test", "conversational") == root / "trl_conversational" / "test.jsonl"
    # Meta lines align with trl lines.
    train = read_jsonl(root / "trl" / "train.jsonl")
    train_meta = read_jsonl(root / "meta" / "train.jsonl")
    assert len(train) == len(train_meta) and len(train) > 0
    assert snap.class_balance["chosen_longer_share"] == 1.0


@pytest.mark.django_db
def test_same_spec_same_data_same_hash(engineer, judged_project):
    first = build(engineer, judged_project, seed=7)
    second = build(engineer, judged_project, seed=7)
    assert first.pk != second.pk and second.version == first.version + 1
    assert first.content_hash == second.content_hash
    assert first.judgment_ids_hash == second.judgment_ids_hash
    other = build(engineer, judged_project, seed=8)
    assert other.content_hash != first.content_hash


@pytest.mark.django_db
def test_split_is_by_prompt_with_no_overlap(engineer, judged_project):
    snap = build(
        engineer, judged_project, combine="per_vote", split={"train": 0.5, "validation": 0.25, "test": 0.25}
    )
    root = Path(snap.artifact_dir)
    prompts = {s: {m["prompt_id"] for m in read_jsonl(root / "meta" / f"{s}.jsonl")} for s in SPLITS}
    assert prompts["train"].isdisjoint(prompts["validation"])
    assert prompts["train"].isdisjoint(prompts["test"])
    assert prompts["validation"].isdisjoint(prompts["test"])
    assert {len(p) for p in prompts.values()} == {6, 3} and sum(map(len, prompts.values())) == 12
    assert snap.counts["prompts"] == {"train": 6, "validation": 3, "test": 3}
    # per_vote: one row per judgment.
    assert snap.counts["rows_total"] == 36


@pytest.mark.django_db
def test_flagged_annotator_is_excluded(engineer, annotators, judged_project):
    AnnotatorFlag.objects.create(project=judged_project, annotator=annotators[2], reason="low_agreement")
    snap = build(engineer, judged_project, min_agreement=1.0)
    assert snap.status == JobStatus.SUCCEEDED, snap.error
    votes = read_jsonl(Path(snap.artifact_dir) / "votes.jsonl")
    assert len(votes) == 24
    assert annotator_pseudonym(annotators[2].pk) not in {v["annotator"] for v in votes}
    # The flagged annotator's "B" votes no longer lower agreement: every pair is unanimous.
    assert snap.counts["rows_total"] == 12
    included = build(engineer, judged_project, exclude_flagged=False)
    assert included.counts["judgments_selected"] == 36
    AnnotatorFlag.objects.update(status=FlagStatus.CLEARED)
    cleared = build(engineer, judged_project)
    assert cleared.counts["judgments_selected"] == 36


@pytest.mark.django_db
def test_min_agreement_drops_split_votes(engineer, judged_project):
    # 2 of 3 agree (0.667) on every pair: a 0.7 threshold leaves nothing, which is a failed build.
    snap = build(engineer, judged_project, min_agreement=0.7)
    assert snap.status == JobStatus.FAILED
    assert "No pair survived" in snap.error and snap.artifact_dir == ""


@pytest.fixture
def tie_project(judged_project, annotators):
    for i in range(4):
        task = make_task(
            judged_project, prompt=make_prompt(judged_project, f"Tie prompt {i}"), a=f"x{i}", b=f"y{i}"
        )
        for user in annotators:
            judge(task, user, "tie" if i < 2 else "both_bad")
    return judged_project


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["drop", "margin_zero", "tie_aware"])
def test_tie_modes(engineer, tie_project, mode):
    snap = build(engineer, tie_project, ties=mode)
    assert snap.status == JobStatus.SUCCEEDED, snap.error
    rows, metas = all_rows(snap), all_rows(snap, "meta")
    ties = [(r, m) for r, m in zip(rows, metas, strict=True) if m["label_type"] == "tie"]
    assert not any(m["label_type"] == "both_bad" for m in metas)  # both_bad stays "drop"
    if mode == "drop":
        assert ties == [] and all("margin" not in r for r in rows)
        assert snap.counts["dropped_tie_dropped"] == 2
    else:
        assert len(ties) == 2 and all(r["margin"] == 0.0 for r, _ in ties)
        # Every row carries margin so TRL's collator sees one schema; preference rows get 0 (plain BT loss).
        assert all(r["margin"] == 0.0 for r in rows) and len(rows) == 14
        assert snap.class_balance["label_type"] == {"pref": 12, "tie": 2, "both_bad": 0}


@pytest.mark.django_db
def test_margin_from_strength(engineer, judged_project):
    snap = build(engineer, judged_project, margin="strength")
    rows = all_rows(snap)
    # Winning votes: strength 3 (margin 2.0) and strength 1 (0.5) -> mean 1.25.
    assert {r["margin"] for r in rows} == {1.25}


@pytest.mark.django_db
def test_gold_repeat_and_adjudication(engineer, annotators, judged_project, reviewer=None):
    gold = make_task(judged_project, kind=TaskKind.GOLD, gold_choice="A")
    judge(gold, annotators[0], "A")
    original = judged_project.test_tasks[0]
    repeat = make_task(judged_project, prompt=original.prompt, kind=TaskKind.REPEAT, repeat_of=original)
    judge(repeat, annotators[0], "B")
    # The reviewer settles task 1 for B although the votes said A.
    disputed = judged_project.test_tasks[1]
    Adjudication.objects.create(task=disputed, reviewer=engineer, choice="B", strength=2)
    snap = build(engineer, judged_project)
    assert snap.counts["judgments_selected"] == 36  # gold and repeat left out
    metas = all_rows(snap, "meta")
    settled = [
        m for m in metas if set(m["judgment_ids"]) == set(disputed.judgments.values_list("id", flat=True))
    ]
    assert len(settled) == 1
    assert settled[0]["chosen_candidate_id"] == disputed.candidate_b_id
    with_gold = build(engineer, judged_project, exclude_gold=False)
    assert with_gold.counts["judgments_selected"] == 37


@pytest.mark.django_db
def test_impossible_specs_create_nothing(engineer, judged_project):
    cases = [
        ({"projects": [judged_project.pk], "split": {"train": 0.8, "validation": 0.1, "test": 0.2}}, "split"),
        ({"projects": [987654]}, "projects"),
        ({"projects": [judged_project.pk], "date_from": "2001-01-01", "date_to": "2001-02-01"}, "spec"),
        ({"projects": [judged_project.pk], "ties": "sometimes"}, "ties"),
        ({"projects": [judged_project.pk], "colour": "red"}, "colour"),
    ]
    for spec, field in cases:
        with pytest.raises(ValidationError) as info:
            snapshot_create(user=engineer, spec=spec, enqueue=False)
        assert field in info.value.message_dict, (spec, info.value.message_dict)
    assert DatasetSnapshot.objects.count() == 0


@pytest.mark.django_db
def test_failed_build_leaves_no_files(engineer, judged_project, settings, monkeypatch):
    # The snapshots folder cannot be created (a file is in the way): failed, reason recorded.
    (settings.ARTIFACT_DIR / "snapshots").write_text("not a directory")
    snap = build(engineer, judged_project)
    assert snap.status == JobStatus.FAILED and snap.error and snap.artifact_dir == ""
    (settings.ARTIFACT_DIR / "snapshots").unlink()

    # A late failure (writing the HF dataset after every JSONL is written) removes the temp dir.
    def disk_full(root):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("training.datasets.writers.write_hf_dataset", disk_full)
    snap = build(engineer, judged_project)
    assert snap.status == JobStatus.FAILED and "No space left" in snap.error
    assert list((settings.ARTIFACT_DIR / "snapshots").iterdir()) == []


@pytest.mark.django_db
@pytest.mark.parametrize(("mode", "expected"), [("all_pairs", 6), ("best_vs_rest", 3), ("adjacent", 3)])
def test_ranking_pair_modes_select_expanded_judgments(engineer, annotators, judged_project, mode, expected):
    from annotation.models import ComparisonTask, Ranking

    prompt = make_prompt(judged_project, "Rank these four answers")
    cands = [make_candidate(prompt, f"ranked answer {i}") for i in range(4)]
    order = [cands[2].pk, cands[0].pk, cands[3].pk, cands[1].pk]
    ranking = Ranking.objects.create(
        project=judged_project, prompt=prompt, annotator=annotators[0], order=order
    )
    for i in range(4):
        for j in range(i + 1, 4):
            # Store A/B as the worse/better candidate to check orientation too.
            task = ComparisonTask.objects.create(
                project=judged_project,
                prompt=prompt,
                candidate_a_id=order[j],
                candidate_b_id=order[i],
            )
            judge(task, annotators[0], "B", source="ranking", ranking=ranking)
    snap = build(engineer, judged_project, ranking_pairs=mode)
    metas = [m for m in all_rows(snap, "meta") if m["prompt_id"] == prompt.pk]
    assert len(metas) == expected
    rank = {c: i for i, c in enumerate(order)}
    assert all(rank[m["chosen_candidate_id"]] < rank[m["rejected_candidate_id"]] for m in metas)
    if mode == "best_vs_rest":
        assert {m["chosen_candidate_id"] for m in metas} == {order[0]}


@pytest.mark.django_db(transaction=True)
def test_build_outside_a_transaction_reads_one_database_snapshot(engineer, judged_project):
    # Outside a test transaction the export runs in its own REPEATABLE READ transaction on PostgreSQL.
    snap = build(engineer, judged_project)
    assert snap.status == JobStatus.SUCCEEDED, snap.error
    assert snap.counts["rows_total"] == 12


@pytest.mark.django_db
def test_card_links_later_training_runs(engineer, judged_project):
    from training.models import TrainingRun

    snap = build(engineer, judged_project)
    run = TrainingRun.objects.create(snapshot=snap, base_model="tiny", project=judged_project)
    lineage = snapshot_card(snap)["lineage"]
    assert lineage["training_runs"] == [run.pk] and lineage["judgment_ids_hash"] == snap.judgment_ids_hash
