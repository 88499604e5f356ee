"""Lineage through the web: the pages draw the chain with its hashes and are linked from the artefacts'
pages, the API returns the same chain, access follows the artefacts' own rules, and the card file written
into the artefact directory is the card the API downloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from annotation.models import Role
from tests.factories import add_member, make_project, make_user, token_client
from training.datasets.selectors import annotator_pseudonym
from training.lineage.card import CARD_FILE, card_is_intact
from training.lineage.selectors import lineage_chain
from training.lineage.services import lineage_card_write

pytestmark = pytest.mark.django_db


def _routes(chain) -> list[tuple[str, str, str, int]]:
    """(page route, API route, card route, id) per artefact kind."""
    return [
        ("training:snapshot_lineage", "snapshot-lineage", "snapshot-lineage-card", chain.snapshot.pk),
        ("training:reward_model_lineage", "reward-model-lineage", "reward-model-lineage-card", chain.rm.pk),
        ("training:policy_lineage", "policy-run-lineage", "policy-run-lineage-card", chain.ppo.pk),
    ]


def test_pages_draw_the_chain_with_full_hashes_and_are_linked(client, chain):
    client.force_login(chain.engineer)
    page = client.get(reverse("training:policy_lineage", args=[chain.ppo.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    for digest in (chain.snapshot.content_hash, chain.snapshot.judgment_ids_hash):
        assert f'title="{digest}"' in html and f'data-copy="{digest}"' in html
        assert digest[:12] in html
    assert f"{chain.project.name} reward model v1" in html and "<details><summary>Config</summary>" in html
    assert reverse("policy-run-lineage-card", args=[chain.ppo.pk]) in html
    assert 'id="card-file">current<' in html
    for user in chain.annotators:  # members see who judged as pseudonyms, never as names
        assert f"<td>{annotator_pseudonym(user.pk)}</td>" in html and user.username not in html
    for detail, lineage, pk in (
        ("training:snapshot_detail", "training:snapshot_lineage", chain.snapshot.pk),
        ("training:reward_model_detail", "training:reward_model_lineage", chain.rm.pk),
        ("training:policy_detail", "training:policy_lineage", chain.ppo.pk),
    ):
        assert reverse(lineage, args=[pk]) in client.get(reverse(detail, args=[pk])).content.decode()
        assert client.get(reverse(lineage, args=[pk])).status_code == 200


def test_api_returns_the_chain_the_selector_builds(chain):
    api = token_client(chain.engineer, ["train", "export"])
    for _, route, _, pk in _routes(chain):
        response = api.get(reverse(route, args=[pk]))
        assert response.status_code == 200, response.content
        kind = {"snapshot-lineage": "snapshot", "reward-model-lineage": "reward_model"}.get(route, "run")
        obj = {"snapshot": chain.snapshot, "reward_model": chain.rm, "run": chain.ppo}[kind]
        assert response.json() == json.loads(
            json.dumps(lineage_chain(kind=kind, obj=obj, user=chain.engineer))
        )


def test_card_files_are_written_by_the_registry_and_the_run_and_equal_the_download(chain):
    api = token_client(chain.engineer, ["train"])
    for obj, route, folder in (
        (chain.rm, "reward-model-lineage-card", chain.rm.artifact_dir),
        (chain.ppo, "policy-run-lineage-card", chain.ppo.output_dir),
    ):
        stored = json.loads((Path(folder) / CARD_FILE).read_text(encoding="utf-8"))
        assert card_is_intact(stored) and stored["schema_version"] == 1
        download = api.get(reverse(route, args=[obj.pk]))
        assert download.status_code == 200
        assert (
            "attachment" in download["Content-Disposition"] and CARD_FILE in download["Content-Disposition"]
        )
        assert download.json() == stored
        chain_view = api.get(reverse(route.removesuffix("-card"), args=[obj.pk])).json()
        assert chain_view["nodes"] == stored["nodes"]
        assert chain_view["card"] == {
            "content_hash": stored["content_hash"],
            "file_name": CARD_FILE,
            "file": "current",
            "intact": True,
        }
    # The reward model's card holds its evaluation and promotion (written after those commits too).
    rm_card = json.loads((Path(chain.rm.artifact_dir) / CARD_FILE).read_text(encoding="utf-8"))
    rm_node = rm_card["nodes"][-1]
    assert (
        rm_node["sections"]["promotions"]["count"] == 1 and rm_node["sections"]["evaluations"]["count"] == 1
    )
    assert rm_node["sections"]["run"]["status"] == "succeeded"
    # A snapshot's folder is immutable: it has no card file, the card is downloaded.
    snap = token_client(chain.engineer, ["export"]).get(reverse("snapshot-lineage", args=[chain.snapshot.pk]))
    assert (
        snap.json()["card"]["file"] == "none" and not (Path(chain.snapshot.artifact_dir) / CARD_FILE).exists()
    )


def test_a_changed_card_file_is_reported(chain):
    path = Path(chain.rm.artifact_dir) / CARD_FILE
    card = json.loads(path.read_text(encoding="utf-8"))
    card["nodes"][-1]["facts"]["base_model"] = "something-else"
    path.write_text(json.dumps(card), encoding="utf-8")
    state = lineage_chain(kind="reward_model", obj=chain.rm, user=chain.engineer)["card"]
    assert state["file"] == "differs" and state["intact"] is False
    assert lineage_card_write(kind="reward_model", obj=chain.rm) == path
    assert lineage_chain(kind="reward_model", obj=chain.rm, user=chain.engineer)["card"]["file"] == "current"


def test_card_files_are_written_only_inside_the_artifact_dir(chain, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    chain.rm.artifact_dir = str(outside)
    assert lineage_card_write(kind="reward_model", obj=chain.rm) is None
    assert not (outside / CARD_FILE).exists()
    assert lineage_card_write(kind="snapshot", obj=chain.snapshot) is None
    assert lineage_card_write(kind="run", obj=chain.reward_run) is None  # its model is the reward model's


def test_access_follows_the_artefacts_own_rules(client, chain):
    outsider = make_user(Role.ENGINEER)
    make_project(members=[(outsider, Role.ENGINEER)])
    annotator = chain.annotators[0]
    reviewer = make_user(Role.REVIEWER)
    add_member(chain.project, reviewer, Role.REVIEWER)
    for page, api_route, card_route, pk in _routes(chain):
        for user, page_status, api_status in (
            (outsider, 404, 404),
            (annotator, 403, 403),
            (reviewer, 403, 403),
        ):
            client.force_login(user)
            assert client.get(reverse(page, args=[pk])).status_code == page_status, (page, user)
            api = token_client(user, ["train", "export"])
            for route in (api_route, card_route):
                assert api.get(reverse(route, args=[pk])).status_code == api_status, (route, user)
        client.logout()
        assert client.get(reverse(page, args=[pk])).status_code == 302
    admin = make_user(Role.ADMIN)
    api = token_client(admin, ["train", "export"])
    for _, api_route, card_route, pk in _routes(chain):
        assert api.get(reverse(api_route, args=[pk])).status_code == 200
        assert api.get(reverse(card_route, args=[pk])).status_code == 200
    # scopes as the artefacts' own APIs: snapshots want export, reward models and policy runs train
    only_train = token_client(chain.engineer, ["train"])
    assert only_train.get(reverse("snapshot-lineage", args=[chain.snapshot.pk])).status_code == 403
    only_export = token_client(chain.engineer, ["export"])
    assert only_export.get(reverse("reward-model-lineage", args=[chain.rm.pk])).status_code == 403


def test_a_policy_run_finishing_through_the_job_runner_writes_its_card(
    chain, monkeypatch, django_capture_on_commit_callbacks
):
    """The run lifecycle of ``training.jobs`` (queued -> running -> succeeded) with a stand-in executor that
    leaves a model folder, as the real ones do: the card lands in that folder after the commit."""
    from training import jobs
    from training.models import JobStatus, RunKind, TrainingRun
    from training.policy.services import policy_output_dir

    run = TrainingRun.objects.create(
        kind=RunKind.GRPO,
        project=chain.project,
        base_model=chain.sft.output_dir,
        config={"reward": {"type": "registry", "reward_model_id": chain.rm.pk}},
    )
    run.output_dir = policy_output_dir(run)
    run.save(update_fields=["output_dir"])

    def executor(run, reporter):
        Path(run.output_dir).mkdir(parents=True)
        reporter.progress(1, 1)
        return {"model_dir": run.output_dir, "reward": {"type": "registry", "reward_model_id": chain.rm.pk}}

    monkeypatch.setitem(jobs.EXECUTORS, RunKind.GRPO, executor)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED
    card = json.loads((Path(run.output_dir) / CARD_FILE).read_text(encoding="utf-8"))
    assert card_is_intact(card) and card["artefact"] == f"run:{run.pk}"
    assert [n["key"] for n in card["nodes"]][-3:] == [
        f"run:{chain.sft.pk}",
        f"reward_model:{chain.rm.pk}",
        f"run:{run.pk}",
    ]


@pytest.mark.slow  # trains a tiny reward model (5-20 s on a loaded 2-core machine)
def test_a_real_reward_run_leaves_its_lineage_card_beside_its_model_card(
    db, tiny_reward_model_dir, django_capture_on_commit_callbacks
):
    """RewardTrainer on a tiny model through the job runner: the registry's commit writes the card, and the
    run's success writes it again with the run succeeded."""
    from tests.training.runs.conftest import TINY_CONFIG
    from tests.training.runs.snapshot_files import synthetic_pairs, write_snapshot
    from training import jobs
    from training.models import RewardModel
    from training.rewardmodels.services import reward_run_create

    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    splits = {"train": synthetic_pairs(8, seed=1), "validation": synthetic_pairs(2, seed=2)}
    snapshot = write_snapshot(project, {**splits, "test": synthetic_pairs(6, seed=3)})
    run = reward_run_create(
        snapshot=snapshot, base_model=str(tiny_reward_model_dir), config=TINY_CONFIG, enqueue=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        jobs.run_execute(run_id=run.pk)
    rm = RewardModel.objects.get(run=run)
    folder = Path(rm.artifact_dir)
    assert (folder / "preflab_card.json").is_file()
    card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    assert card_is_intact(card) and card["artefact"] == f"reward_model:{rm.pk}"
    node = card["nodes"][-1]
    assert node["hashes"]["snapshot_hash"] == snapshot.content_hash
    assert node["sections"]["run"]["status"] == "succeeded"
    assert node["sections"]["evaluations"]["items"][0]["metrics"]["accuracy"] is not None
    download = token_client(engineer, ["train"]).get(reverse("reward-model-lineage-card", args=[rm.pk]))
    assert download.json() == card


def test_the_command_writes_the_cards_of_existing_artefacts(chain):
    from io import StringIO

    from django.core.management import call_command

    paths = [Path(chain.rm.artifact_dir) / CARD_FILE, Path(chain.ppo.output_dir) / CARD_FILE]
    for path in paths:
        path.unlink()
    out = StringIO()
    call_command("write_lineage_cards", stdout=out)
    # the reward model and the two policy runs whose folders exist (the SFT folder too)
    assert "3 lineage card(s) written" in out.getvalue()
    assert all(card_is_intact(json.loads(p.read_text(encoding="utf-8"))) for p in paths)
