"""Reliability in snapshots: Dawid-Skene weights from real judgments, ``reliability_weighted`` combining
against plain majority, dropping votes with ``min_reliability``, and stable hashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from annotation.models import Role
from tests.factories import add_member, make_project, make_prompt, make_task, make_user
from tests.training.snapshots.conftest import judge
from training.datasets.selectors import annotator_pseudonym, annotator_reliability_weights, snapshot_card
from training.datasets.services import snapshot_build, snapshot_create
from training.datasets.spec import SnapshotSpec
from training.models import DatasetSnapshot, JobStatus

SPLITS = ("train", "validation", "test")
N_AGREED = 16  # tasks every annotator votes on
N_CONTESTED = 5  # tasks only one reliable annotator and the two contrarians vote on


def build(user, project, **spec) -> DatasetSnapshot:
    snapshot = snapshot_create(user=user, spec={"projects": [project.pk], **spec}, name="rel", enqueue=False)
    snapshot = snapshot_build(snapshot_id=snapshot.pk)
    assert snapshot.status == JobStatus.SUCCEEDED, snapshot.error
    return snapshot


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def rows_with_meta(snapshot) -> list[tuple[dict, dict]]:
    root = Path(snapshot.artifact_dir)
    out = []
    for split in SPLITS:
        trl = read_jsonl(root / "trl" / f"{split}.jsonl")
        meta = read_jsonl(root / "meta" / f"{split}.jsonl")
        assert len(trl) == len(meta)
        out.extend(zip(trl, meta, strict=True))
    return out


@pytest.fixture
def crowd(db, engineer):
    """Three reliable annotators who always give the true answer and two contrarians who always give the
    other one. Truth alternates between A and B. On the agreed tasks all five vote (3 true vs 2 contrary);
    on the contested tasks one reliable annotator faces both contrarians, so plain majority picks the
    contrarians' answer."""
    project = make_project(members=[(engineer, Role.ENGINEER)])
    reliable = [make_user(Role.ANNOTATOR) for _ in range(3)]
    contrarians = [make_user(Role.ANNOTATOR) for _ in range(2)]
    for user in (*reliable, *contrarians):
        add_member(project, user)
    other = {"A": "B", "B": "A"}
    contested, contrarian_ids = [], []
    for i in range(N_AGREED + N_CONTESTED):
        truth = "A" if i % 2 == 0 else "B"
        prompt = make_prompt(project, f"Question {i}: which answer is right?")
        task = make_task(project, prompt=prompt, a=f"Answer A {i}", b=f"Answer B {i}")
        voters = reliable if i < N_AGREED else reliable[:1]
        for user in voters:
            judge(task, user, truth, 2)
        for user in contrarians:
            contrarian_ids.append(judge(task, user, other[truth], 2).pk)
        if i >= N_AGREED:
            contested.append((task, truth))
    project.reliable, project.contrarians = reliable, contrarians
    project.contested, project.contrarian_judgment_ids = contested, contrarian_ids
    return project


def chosen_on_contested(snapshot, project) -> dict[int, str]:
    """Which answer ("A"/"B") each contested task's row chose."""
    by_prompt = {meta["prompt_id"]: meta for _, meta in rows_with_meta(snapshot)}
    out = {}
    for task, _ in project.contested:
        meta = by_prompt[task.prompt_id]
        out[task.pk] = "A" if meta["chosen_candidate_id"] == task.candidate_a_id else "B"
    return out


@pytest.mark.django_db
def test_reliability_weights_come_from_dawid_skene(crowd):
    weights = annotator_reliability_weights(project_ids=[crowd.pk])
    assert set(weights) == {(crowd.pk, u.pk) for u in (*crowd.reliable, *crowd.contrarians)}
    for user in crowd.reliable:
        assert weights[(crowd.pk, user.pk)] > 0.8
    for user in crowd.contrarians:
        assert weights[(crowd.pk, user.pk)] < 0.25
    # Rounded to 4 decimals, and the same on a second read of the same judgments.
    assert all(round(w, 4) == w for w in weights.values())
    assert annotator_reliability_weights(project_ids=[crowd.pk]) == weights


@pytest.mark.django_db
def test_weighted_combining_follows_the_reliable_annotator(engineer, crowd):
    majority = build(engineer, crowd, combine="majority")
    weighted = build(engineer, crowd, combine="reliability_weighted")
    truth = {task.pk: answer for task, answer in crowd.contested}
    contrary = {pk: {"A": "B", "B": "A"}[answer] for pk, answer in truth.items()}
    # Two contrarian votes outnumber one reliable vote under majority; reliability weighting reverses that.
    assert chosen_on_contested(majority, crowd) == contrary
    assert chosen_on_contested(weighted, crowd) == truth
    # Agreed tasks come out the same either way (the true answer), and no vote is dropped by weighting.
    for snap in (majority, weighted):
        assert snap.counts["rows_total"] == N_AGREED + N_CONTESTED
        assert snap.counts["judgments_used"] == 5 * N_AGREED + 3 * N_CONTESTED
        assert "votes_dropped_low_reliability" not in snap.counts
    assert majority.content_hash != weighted.content_hash
    # The card records the weights used, per project and pseudonymous annotator.
    card = snapshot_card(weighted)
    recorded = card["reliability"][str(crowd.pk)]
    assert set(recorded) == {annotator_pseudonym(u.pk) for u in (*crowd.reliable, *crowd.contrarians)}
    assert recorded[annotator_pseudonym(crowd.reliable[0].pk)] > 0.8
    assert "reliability" not in snapshot_card(majority)


@pytest.mark.django_db
def test_same_weighted_spec_twice_gives_the_same_hash(engineer, crowd):
    first = build(engineer, crowd, combine="reliability_weighted", min_reliability=0.3)
    second = build(engineer, crowd, combine="reliability_weighted", min_reliability=0.3)
    assert second.version == first.version + 1
    assert first.content_hash == second.content_hash
    assert first.judgment_ids_hash == second.judgment_ids_hash
    assert first.counts == second.counts
    for split in SPLITS:
        a = (Path(first.artifact_dir) / "trl" / f"{split}.jsonl").read_bytes()
        b = (Path(second.artifact_dir) / "trl" / f"{split}.jsonl").read_bytes()
        assert a == b


@pytest.mark.django_db
def test_min_reliability_drops_low_reliability_votes(engineer, crowd):
    snap = build(engineer, crowd, combine="majority", min_reliability=0.5)
    n_dropped = 2 * (N_AGREED + N_CONTESTED)
    assert snap.counts["votes_dropped_low_reliability"] == n_dropped
    assert snap.counts["judgments_used"] == 3 * N_AGREED + N_CONTESTED
    # With the contrarians gone even plain majority follows the reliable annotator on contested pairs.
    assert chosen_on_contested(snap, crowd) == {task.pk: answer for task, answer in crowd.contested}
    # Dropped judgments are in no row and not in the lineage file.
    used = {int(i) for i in (Path(snap.artifact_dir) / "judgment_ids.txt").read_text().split()}
    assert not used & set(crowd.contrarian_judgment_ids)
    assert all(
        not set(meta["judgment_ids"]) & set(crowd.contrarian_judgment_ids) for _, meta in rows_with_meta(snap)
    )
    # The spec (stored and in the card) records the threshold.
    assert snap.spec["min_reliability"] == 0.5
    assert json.loads((Path(snap.artifact_dir) / "card.json").read_text())["spec"]["min_reliability"] == 0.5
    # A threshold nobody falls below drops nothing, and says so.
    kept = build(engineer, crowd, min_reliability=0.0)
    assert kept.counts["votes_dropped_low_reliability"] == 0
    assert kept.counts["judgments_used"] == 5 * N_AGREED + 3 * N_CONTESTED


@pytest.mark.django_db
def test_min_reliability_keeps_annotators_without_an_estimate(engineer, crowd):
    # Imported prior preferences are not counted by the Dawid-Skene estimate: no weight, so never dropped.
    importer = make_user(Role.ANNOTATOR)
    task = make_task(crowd, a="prior A", b="prior B")
    prior = judge(task, importer, "A", source="prior")
    snap = build(engineer, crowd, min_reliability=0.99)
    used = {int(i) for i in (Path(snap.artifact_dir) / "judgment_ids.txt").read_text().split()}
    assert prior.pk in used


@pytest.mark.parametrize(
    ("value", "ok"),
    [(None, True), (0, True), (0.5, True), (1, True), ("0.25", True), (-0.1, False), (1.5, False)]
    + [("high", False), (True, False), ([0.5], False), (float("nan"), False)],
)
def test_min_reliability_is_validated(value, ok):
    data = {"projects": [1], "min_reliability": value}
    if ok:
        spec = SnapshotSpec.from_dict(data)
        assert spec.min_reliability == (None if value is None else float(value))
        return
    with pytest.raises(ValidationError) as err:
        SnapshotSpec.from_dict(data)
    assert set(err.value.message_dict) == {"min_reliability"}


def test_unset_min_reliability_does_not_change_the_spec_hash_input():
    spec = SnapshotSpec.from_dict({"projects": [3]})
    assert "min_reliability" not in spec.canonical_json()
    assert spec.to_dict()["min_reliability"] is None
    assert (
        '"min_reliability":0.4'
        in SnapshotSpec.from_dict({"projects": [3], "min_reliability": 0.4}).canonical_json()
    )
