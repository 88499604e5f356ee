"""Ensemble reward models: k tiny members trained in one run through the job runner register one version
whose artifact holds k members; the evaluation says whether the ensemble beats its best member, with
paired bootstrap intervals; the size is capped and checked at creation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from tests.training.runs.conftest import TINY_CONFIG
from training import jobs
from training.evaluation import bootstrap_accuracy, pair_outcomes, paired_bootstrap_difference
from training.models import JobStatus, ModelEvaluation, RewardModel, RunMetric, TrainingRun
from training.rewardmodels.services import reward_run_create
from training.rm_encoding import score_split
from training.rm_ensemble import EnsembleRewardModel, load_reward_model, reward_spread


def test_pair_outcomes_and_bootstrap_intervals():
    assert pair_outcomes([1.0, 0.0, 2.0], [0.0, 1.0, 2.0]).tolist() == [1.0, 0.0, 0.5]
    acc = bootstrap_accuracy([1, 1, 1, 0] * 25, n_boot=500, seed=0)
    assert acc["accuracy"] == 0.75 and acc["n"] == 100
    assert 0.6 < acc["ci"][0] < 0.75 < acc["ci"][1] < 0.9
    # identical outcomes: a zero difference, no verdict either way
    same = paired_bootstrap_difference([1, 0] * 50, [1, 0] * 50, n_boot=200)
    assert same["difference"] == 0.0 and same["ci"] == [0.0, 0.0] and same["verdict"] == "no clear difference"
    # A right on 20 more pairs of 100 than B: the paired interval excludes 0
    a, b = np.array([1] * 80 + [0] * 20), np.array([1] * 60 + [0] * 40)
    better = paired_bootstrap_difference(a, b, n_boot=1000)
    assert (
        better["difference"] == pytest.approx(0.2) and better["verdict"] == "better" and better["ci"][0] > 0
    )
    assert paired_bootstrap_difference(b, a, n_boot=1000)["verdict"] == "worse"
    with pytest.raises(ValueError):
        paired_bootstrap_difference([1], [1, 0])


def test_reward_spread_is_the_population_std():
    assert reward_spread([1.0, 3.0]) == (2.0, 1.0)
    mean, std = reward_spread([0.0, 1.0, 2.0])
    assert mean == 1.0 and std == pytest.approx((2 / 3) ** 0.5)


@pytest.mark.slow
@pytest.mark.django_db
def test_an_ensemble_run_registers_one_version_with_k_members(client, tiny_snapshot, tiny_reward_model_dir):
    config = {**TINY_CONFIG, "ensemble_size": 3}
    run = reward_run_create(
        snapshot=tiny_snapshot, base_model=str(tiny_reward_model_dir), config=config, seed=5, enqueue=False
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, (run.status_reason, run.log_tail)
    # progress over all members: 3 x 4 steps, metric rows continue across members
    assert run.step == run.total_steps == 12
    # training rows only: each member also logs a validation row at the end of its epoch
    steps = sorted(RunMetric.objects.filter(run=run, values__has_key="loss").values_list("step", flat=True))
    assert steps == list(range(1, 13))
    assert "member 3/3: training (seed 7, seed)" in run.log_tail
    ensemble = run.summary["ensemble"]
    assert {k: ensemble[k] for k in ("size", "resample", "seeds")} == {
        "size": 3,
        "resample": "seed",
        "seeds": [5, 6, 7],
    }
    assert len(ensemble["member_train_seconds"]) == 3

    rm = RewardModel.objects.get(run=run)  # one version for the whole ensemble
    assert RewardModel.objects.filter(project=rm.project).count() == 1 and rm.version == 1
    art = Path(rm.artifact_dir)
    assert (art / "tokenizer.json").exists() and not (art / "model.safetensors").exists()
    for i in range(3):
        assert (art / "members" / str(i) / "model.safetensors").exists()
    card = json.loads((art / "preflab_card.json").read_text())
    assert card["ensemble"]["size"] == 3 and card["version"] == 1
    assert [m["dir"] for m in card["ensemble"]["members"]] == ["members/0", "members/1", "members/2"]
    assert [m["seed"] for m in card["ensemble"]["members"]] == [5, 6, 7]
    assert card["metrics"]["ensemble_vs_best_member"]["verdict"] in {"better", "worse", "no clear difference"}

    # the members differ (seeds), and the ensemble's reported accuracy is that of the members' mean
    from transformers import AutoTokenizer

    model = load_reward_model(art)
    assert isinstance(model, EnsembleRewardModel) and model.size == 3
    heads = [m.score.weight.detach() for m in model.members]
    assert not np.allclose(heads[0].numpy(), heads[1].numpy())
    from training.datasets.reader import read_snapshot_split

    rows, meta = read_snapshot_split(tiny_snapshot.artifact_dir, "test")
    tokenizer = AutoTokenizer.from_pretrained(art)
    member_scores = [score_split(m, tokenizer, rows, meta, max_length=64)[:2] for m in model.members]
    mean_c = np.mean([s[0] for s in member_scores], axis=0)
    mean_r = np.mean([s[1] for s in member_scores], axis=0)
    report = ModelEvaluation.objects.get(reward_model=rm).metrics
    assert report["accuracy"] == pytest.approx(float(pair_outcomes(mean_c, mean_r).mean()))
    ens = report["ensemble"]
    assert ens["size"] == 3 and ens["split"] == "test" and len(ens["members"]) == 3
    for member, (r_c, r_r) in zip(ens["members"], member_scores, strict=True):
        assert member["accuracy"] == pytest.approx(float(pair_outcomes(r_c, r_r).mean()))
        assert member["ci"][0] <= member["accuracy"] <= member["ci"][1]
    best = ens["members"][ens["best_member"]]
    assert best["accuracy"] == max(m["accuracy"] for m in ens["members"])
    vs = ens["vs_best_member"]
    assert vs["difference"] == pytest.approx(ens["ensemble"]["accuracy"] - best["accuracy"])
    assert vs["ci"][0] <= vs["difference"] <= vs["ci"][1] and vs["n"] == 12

    # the model's page shows the comparison
    from django.urls import reverse

    from annotation.models import Role
    from tests.factories import add_member, make_user

    engineer = make_user(Role.ENGINEER)
    add_member(rm.project, engineer, Role.ENGINEER)
    client.force_login(engineer)
    page = client.get(reverse("training:reward_model_detail", args=[rm.pk])).content.decode()
    assert "Ensemble of 3 members" in page and f"<strong>{vs['verdict']}</strong>" in page


@pytest.mark.django_db
def test_ensemble_size_is_checked_and_capped_at_creation(tiny_snapshot, settings):
    settings.PREFLAB_MAX_ENSEMBLE_SIZE = 4
    for size, needle in ((0, "config.ensemble_size: must be at least 1"), (5, "over the limit of 4")):
        with pytest.raises(ValidationError) as info:
            reward_run_create(
                snapshot=tiny_snapshot, base_model="tiny", config={"ensemble_size": size}, enqueue=False
            )
        assert needle in str(info.value.message_dict)
    with pytest.raises(ValidationError) as info:
        reward_run_create(
            snapshot=tiny_snapshot,
            base_model="tiny",
            config={"ensemble_resample": "jackknife"},
            enqueue=False,
        )
    assert "config.ensemble_resample" in info.value.message_dict
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("config", "field", "needle"),
    [
        ({"ensemble_size": 100}, "config", "config.ensemble_size: 100 is over the limit of 8"),
        ({"ensemble_size": 0}, "config.ensemble_size", "must be at least 1"),
        ({"length_penalty": -1.0}, "config.length_penalty", "must be at least 0"),
    ],
)
def test_the_api_refuses_a_bad_ensemble_or_debias_option_with_a_400(tiny_snapshot, config, field, needle):
    from rest_framework.test import APIClient

    from annotation.models import Role
    from tests.factories import add_member, make_token, make_user

    engineer = make_user(Role.ENGINEER)
    for project in tiny_snapshot.projects.all():
        add_member(project, engineer, Role.ENGINEER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(engineer, ['train'])}")
    body = {"snapshot_id": tiny_snapshot.pk, "base_model": "tiny", "config": config}
    resp = client.post("/api/v1/runs/", body, format="json")
    assert resp.status_code == 400, resp.content
    assert needle in " ".join(resp.json()["error"]["fields"][field])
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_the_run_form_queues_an_ensemble_with_a_length_penalty(client, tiny_snapshot):
    from django.urls import reverse

    from annotation.models import Role
    from tests.factories import add_member, make_user

    engineer = make_user(Role.ENGINEER)
    for project in tiny_snapshot.projects.all():
        add_member(project, engineer, Role.ENGINEER)
    client.force_login(engineer)
    page = client.get(reverse("training:run_list")).content.decode()
    assert 'name="ensemble_size" value="1"' in page and 'name="length_penalty" value="0.0"' in page
    form = {"snapshot": tiny_snapshot.pk, "base_model": "tiny", "truncate_prompt_left": "on"}
    bad = client.post(reverse("training:run_create"), {**form, "ensemble_size": "0"}, follow=True)
    assert "config.ensemble_size: must be at least 1" in bad.content.decode()
    assert not TrainingRun.objects.exists()
    assert 'name="length_offset">' in page  # unchecked by default
    client.post(
        reverse("training:run_create"),
        {**form, "ensemble_size": "3", "length_penalty": "0.5", "length_offset": "on"},
    )
    run = TrainingRun.objects.get()
    assert run.status == JobStatus.QUEUED
    assert run.config["ensemble_size"] == 3 and run.config["length_penalty"] == 0.5
    assert run.config["length_offset"] is True
