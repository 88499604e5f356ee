"""Unit tests of the pure pair maths: orientation, ranking pair modes, combining, margins, prompt split."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from training.datasets.pairs import (
    PromptSplitter,
    Vote,
    combine_pair,
    orient,
    ranking_pair_kept,
    ranking_pairs,
)
from training.datasets.spec import SnapshotSpec


def spec(**fields) -> SnapshotSpec:
    return SnapshotSpec.from_dict({"projects": [1], **fields})


def vote(label, annotator=1, strength=None, jid=None, task=1, adjudicated=False) -> Vote:
    return Vote((jid or annotator,), task, 1, annotator, 10, 20, label, strength, adjudicated)


def test_orient_maps_task_sides_to_the_unordered_pair():
    assert orient("A", 20, 10) == (10, 20, "hi")  # A is candidate 20 = hi
    assert orient("B", 20, 10) == (10, 20, "lo")
    assert orient("A", 10, 20) == (10, 20, "lo")
    assert orient("tie", 20, 10) == (10, 20, "tie")
    with pytest.raises(ValueError):
        orient("C", 1, 2)


def test_ranking_pair_modes():
    order = [5, 3, 9, 1]
    assert len(ranking_pairs(order, "all_pairs")) == 6
    assert ranking_pairs(order, "best_vs_rest") == [(5, 3), (5, 9), (5, 1)]
    assert ranking_pairs(order, "adjacent") == [(5, 3), (3, 9), (9, 1)]
    for mode in ("all_pairs", "best_vs_rest", "adjacent"):
        kept = {
            frozenset((x, y)) for x in order for y in order if x < y and ranking_pair_kept(order, x, y, mode)
        }
        assert kept == {frozenset(p) for p in ranking_pairs(order, mode)}


def test_majority_reliability_and_per_vote():
    votes = [vote("lo", 1), vote("lo", 2), vote("hi", 3)]
    rows, reason = combine_pair(votes, spec=spec())
    assert reason is None and len(rows) == 1
    assert (rows[0].chosen_id, rows[0].rejected_id, rows[0].label_type) == (10, 20, "pref")
    assert rows[0].agreement == pytest.approx(2 / 3) and rows[0].judgment_ids == (1, 2, 3)
    # A very reliable third annotator outvotes the two others when weighting by reliability.
    weights = {(1, 3): 5.0, (1, 1): 1.0, (1, 2): 1.0}
    rows, _ = combine_pair(votes, spec=spec(combine="reliability_weighted"), weights=weights)
    assert (rows[0].chosen_id, rows[0].rejected_id) == (20, 10) and rows[0].agreement == pytest.approx(5 / 7)
    # The same weights are ignored by plain majority; with no weights reliability_weighted == majority.
    assert combine_pair(votes, spec=spec(), weights=weights)[0][0].chosen_id == 10
    assert combine_pair(votes, spec=spec(combine="reliability_weighted"))[0][0].chosen_id == 10
    rows, _ = combine_pair(votes, spec=spec(combine="per_vote"))
    assert [(r.chosen_id, r.judgment_ids) for r in rows] == [(10, (1,)), (10, (2,)), (20, (3,))]


def test_no_majority_low_agreement_and_ties():
    assert combine_pair([vote("lo", 1), vote("hi", 2)], spec=spec()) == ([], "no_majority")
    assert combine_pair([vote("lo", 1), vote("lo", 2), vote("hi", 3)], spec=spec(min_agreement=0.9))[1] == (
        "low_agreement"
    )
    assert combine_pair([vote("tie", 1)], spec=spec()) == ([], "tie_dropped")
    rows, _ = combine_pair([vote("both_bad", 1)], spec=spec(both_bad="tie_aware"))
    assert rows[0].label_type == "both_bad" and rows[0].margin == 0.0


def test_margin_mapping_and_adjudication():
    votes = [vote("lo", 1, strength=3), vote("lo", 2, strength=None), vote("hi", 3, strength=1)]
    rows, _ = combine_pair(votes, spec=spec(margin="strength", default_margin=0.25))
    assert rows[0].margin == pytest.approx((2.0 + 0.25) / 2)
    custom = spec(margin="strength", margin_by_strength={"1": 1, "2": 2, "3": 4})
    assert combine_pair(votes, spec=custom)[0][0].margin == pytest.approx(2.0)
    assert combine_pair(votes, spec=spec())[0][0].margin is None
    settled = [*votes, Vote((7, 8), 1, 1, None, 10, 20, "hi", 2, True)]
    rows, _ = combine_pair(settled, spec=spec())
    assert rows[0].chosen_id == 20 and rows[0].judgment_ids == (7, 8) and rows[0].agreement == 1.0


def test_prompt_splitter_is_seeded_and_sized():
    ids = list(range(100, 200))
    a = PromptSplitter(ids, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=1)
    b = PromptSplitter(reversed(ids), {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=1)
    c = PromptSplitter(ids, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=2)
    assert a.sizes() == {"train": 80, "validation": 10, "test": 10}
    assert [a.split_of(i) for i in ids] == [b.split_of(i) for i in ids]
    assert [a.split_of(i) for i in ids] != [c.split_of(i) for i in ids]
    with pytest.raises(KeyError):
        a.split_of(5)


def test_spec_validation_reasons():
    with pytest.raises(ValidationError) as info:
        SnapshotSpec.from_dict(
            {"projects": [], "split": {"train": 1.0}, "min_agreement": 2, "date_from": "nope"}
        )
    fields = info.value.message_dict
    assert set(fields) == {"projects", "split", "min_agreement", "date_from"}
    assert SnapshotSpec.from_dict({"projects": ["3", 1, 3]}).projects == [1, 3]
    assert spec(date_from="2024-01-01", date_to="2024-02-01T00:00:00Z").when("date_to").year == 2024
