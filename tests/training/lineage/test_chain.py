"""The lineage chain read from a real database: forward contents and hashes, reverse links, pseudonymous
annotators, restricted nodes, and a query count that does not grow with the number of judgments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import Role
from tests.factories import make_project, make_user
from tests.training.lineage.conftest import build_chain
from training.datasets.selectors import annotator_pseudonym
from training.lineage.card import card_content_hash
from training.lineage.nodes import LINEAGE_MAX_ANNOTATORS
from training.lineage.selectors import lineage_card, lineage_chain
from training.models import DatasetSnapshot, JobStatus, RewardModel

pytestmark = pytest.mark.django_db


def _nodes(data) -> dict[str, dict]:
    return {n["key"]: n for n in data["nodes"]}


def test_policy_run_chain_runs_from_judgments_to_the_gate(chain):
    data = lineage_chain(kind="run", obj=chain.ppo, user=chain.engineer)
    s, rm, sft, ppo = chain.snapshot, chain.rm, chain.sft, chain.ppo
    keys = [n["key"] for n in data["nodes"]]
    assert keys == [
        f"judgments:{s.pk}",
        f"snapshot:{s.pk}",
        f"run:{sft.pk}",
        f"reward_model:{rm.pk}",
        f"run:{ppo.pk}",
    ]
    assert data["artefact"] == f"run:{ppo.pk}" and not data["truncated"]
    nodes = _nodes(data)

    judgments = nodes[f"judgments:{s.pk}"]
    assert judgments["facts"]["judgments"] == 18 == s.counts["judgments_selected"]
    assert judgments["facts"]["matches_build"] is True
    assert judgments["facts"]["annotators"] == 3
    assert judgments["facts"]["id_min"] < judgments["facts"]["id_max"]
    assert judgments["hashes"]["judgment_ids_hash"] == s.judgment_ids_hash
    assert judgments["sections"]["projects"] == [
        {"id": chain.project.pk, "name": chain.project.name, "judgments": 18}
    ]
    assert judgments["sections"]["sources"] == {"human": 18}

    snapshot = nodes[f"snapshot:{s.pk}"]
    assert snapshot["hashes"]["content_hash"] == s.content_hash and len(s.content_hash) == 64
    assert snapshot["hashes"]["judgment_ids_hash"] == s.judgment_ids_hash
    assert snapshot["config"] == s.spec and snapshot["inputs"] == [f"judgments:{s.pk}"]
    assert snapshot["sections"]["counts"] == s.counts

    reward = nodes[f"reward_model:{rm.pk}"]
    assert reward["hashes"]["snapshot_hash"] == s.content_hash
    assert reward["config"] == chain.reward_run.config
    assert reward["facts"]["base_model"] == "tiny-rm-base" and reward["facts"]["version"] == 1
    assert reward["sections"]["run"]["id"] == chain.reward_run.pk
    evaluation = reward["sections"]["evaluations"]["items"][0]
    assert (
        evaluation["metrics"] == {"accuracy": 0.75, "n": 4} and evaluation["snapshot_hash"] == s.content_hash
    )
    promotion = reward["sections"]["promotions"]["items"][0]
    assert promotion["gate"]["passed"] is True and promotion["gate"]["candidate_accuracy"] == 0.75
    assert promotion["promoted_by"] == annotator_pseudonym(chain.engineer.pk)

    assert nodes[f"run:{sft.pk}"]["inputs"] == [f"snapshot:{s.pk}"]
    policy = nodes[f"run:{ppo.pk}"]
    assert policy["inputs"] == [f"run:{sft.pk}", f"reward_model:{rm.pk}"]
    assert policy["sections"]["reward"]["reward_model_id"] == rm.pk
    assert policy["sections"]["reward"]["resolved"] == "at run start"
    assert policy["config"] == ppo.config and len(policy["hashes"]["config_hash"]) == 64
    assert policy["sections"]["gate"]["warnings"]["items"] == [{"detector": "length_inflation", "step": 2}]
    assert "model_dir" not in policy["sections"]["summary"]  # server paths stay out of the card


def test_reverse_links_say_what_was_built_from_each_artefact(chain):
    def derived(kind, obj) -> dict[str, list[str]]:
        data = lineage_chain(kind=kind, obj=obj, user=chain.engineer)
        return {rel["relation"]: [item["key"] for item in rel["items"]] for rel in data["derived"]}

    s, rm = chain.snapshot, chain.rm
    from_snapshot = derived("snapshot", s)
    assert from_snapshot["reward_models"] == [f"reward_model:{rm.pk}"]
    assert from_snapshot["runs"] == [f"run:{chain.sft.pk}", f"run:{chain.reward_run.pk}"]
    assert from_snapshot["evaluations"] == [f"reward_model:{rm.pk}"]
    assert from_snapshot["policy_runs"] == [f"run:{chain.ppo.pk}"]
    assert derived("reward_model", rm)["policy_runs"] == [f"run:{chain.ppo.pk}"]
    assert derived("run", chain.sft)["runs"] == [f"run:{chain.ppo.pk}"]
    assert derived("run", chain.reward_run)["reward_models"] == [f"reward_model:{rm.pk}"]


def test_annotators_are_stable_pseudonyms_that_match_the_snapshot_votes(chain):
    first = lineage_chain(kind="snapshot", obj=chain.snapshot, user=chain.engineer)
    second = lineage_chain(kind="snapshot", obj=chain.snapshot, user=None)
    annotators = _nodes(first)[f"judgments:{chain.snapshot.pk}"]["sections"]["annotators"]
    assert annotators["count"] == 3 and not annotators["truncated"]
    assert {a["annotator"] for a in annotators["items"]} == {
        annotator_pseudonym(u.pk) for u in chain.annotators
    }
    assert sum(a["judgments"] for a in annotators["items"]) == 18
    assert first["nodes"] == second["nodes"]  # stable across calls and viewers who see it all
    votes = Path(chain.snapshot.artifact_dir, "votes.jsonl").read_text(encoding="utf-8").splitlines()
    assert {json.loads(v)["annotator"] for v in votes} == {a["annotator"] for a in annotators["items"]}
    text = json.dumps(lineage_card(kind="reward_model", obj=chain.rm))
    for user in [*chain.annotators, chain.engineer]:
        assert user.username not in text
    assert LINEAGE_MAX_ANNOTATORS == 100


def test_parts_of_the_chain_in_a_hidden_project_become_stubs(chain):
    """A snapshot that also holds another project's judgments: an engineer of one project sees the reward
    model but not the snapshot (the snapshot rule), nor the annotators behind it."""
    other = make_project()
    mixed = DatasetSnapshot.objects.create(
        name="mixed", version=1, status=JobStatus.SUCCEEDED, spec={"projects": [chain.project.pk, other.pk]}
    )
    mixed.projects.add(chain.project, other)
    rm = RewardModel.objects.create(
        project=chain.project, version=2, snapshot=mixed, base_model="tiny", artifact_dir="/nowhere"
    )
    data = lineage_chain(kind="reward_model", obj=rm, user=chain.engineer)
    assert [n["key"] for n in data["nodes"]] == [f"snapshot:{mixed.pk}", f"reward_model:{rm.pk}"]
    stub = data["nodes"][0]
    assert stub["restricted"] and stub["hashes"] == {} and stub["config"] == {} and stub["inputs"] == []
    assert [n["key"] for n in lineage_chain(kind="reward_model", obj=rm)["nodes"]][
        0
    ] == f"judgments:{mixed.pk}"
    # the viewer's card is the same partial view, with its own hash
    card = lineage_card(kind="reward_model", obj=rm, user=chain.engineer)
    assert card["nodes"] == data["nodes"] and card["content_hash"] == card_content_hash(card)


def test_a_viewer_outside_the_project_sees_no_derived_rows(chain):
    outsider = make_user(Role.ENGINEER)
    make_project(members=[(outsider, Role.ENGINEER)])
    data = lineage_chain(kind="snapshot", obj=chain.snapshot, user=outsider)  # the API refuses earlier; the
    assert all(rel["count"] == 0 for rel in data["derived"])  # selector still leaves hidden rows out
    assert all(n["restricted"] for n in data["nodes"])


def test_query_count_does_not_grow_with_the_number_of_judgments(db, django_capture_on_commit_callbacks):
    small = build_chain(tasks=3, annotators=2, capture=django_capture_on_commit_callbacks)
    large = build_chain(tasks=24, annotators=6, capture=django_capture_on_commit_callbacks)
    assert (
        large.snapshot.counts["judgments_selected"] == 144 > 6 == small.snapshot.counts["judgments_selected"]
    )
    counts = []
    for c in (small, large):
        with CaptureQueriesContext(connection) as queries:
            lineage_chain(kind="run", obj=c.ppo, user=c.engineer)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_the_chain_has_a_bounded_number_of_queries(chain, django_assert_max_num_queries):
    for kind, obj in (("run", chain.ppo), ("reward_model", chain.rm), ("snapshot", chain.snapshot)):
        with django_assert_max_num_queries(30):
            lineage_chain(kind=kind, obj=obj, user=chain.engineer)


def test_lists_and_chains_are_capped_with_exact_counts(chain, monkeypatch):
    monkeypatch.setattr("training.lineage.data_nodes.LINEAGE_MAX_ANNOTATORS", 2)
    monkeypatch.setattr("training.lineage.selectors.LINEAGE_MAX_NODES", 3)
    data = lineage_chain(kind="run", obj=chain.ppo, user=chain.engineer)
    assert data["truncated"] and len(data["nodes"]) == 3
    snapshot = lineage_chain(kind="snapshot", obj=chain.snapshot, user=chain.engineer)
    annotators = _nodes(snapshot)[f"judgments:{chain.snapshot.pk}"]["sections"]["annotators"]
    assert annotators["count"] == 3 and len(annotators["items"]) == 2 and annotators["truncated"]


def test_an_optional_model_is_described_generically_until_it_has_a_builder(chain, monkeypatch):
    """How a policy version joins before it has a builder: a model named in OPTIONAL_KINDS (here the
    reward model table stands in for it) is listed under the run it points at and drawn as a generic node."""
    from training.lineage.nodes import OPTIONAL_KINDS, LineageContext, Ref
    from training.lineage.selectors import _build

    monkeypatch.setitem(OPTIONAL_KINDS, "stand_in", "training.RewardModel")
    data = lineage_chain(kind="run", obj=chain.reward_run, user=chain.engineer)
    listed = next(r for r in data["derived"] if r["relation"] == "stand_in:run")
    assert [item["key"] for item in listed["items"]] == [f"stand_in:{chain.rm.pk}"]
    node = _build(LineageContext(chain.engineer), Ref("stand_in", chain.rm.pk), root=False)
    assert node.kind == "stand_in" and not node.restricted
    assert {ref.key for ref in node.inputs} == {f"run:{chain.reward_run.pk}", f"snapshot:{chain.snapshot.pk}"}
    assert node.config["card"] == chain.rm.card and node.facts["version"] == 1
    outsider = make_user(Role.ENGINEER)
    assert _build(LineageContext(outsider), Ref("stand_in", chain.rm.pk), root=False).restricted
    assert _build(LineageContext(outsider), Ref("no_such_kind", 1), root=False).facts["note"]
