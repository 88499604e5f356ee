"""Reward-model sweeps: bad configs refused at creation; a real Optuna study in the test database (PostgreSQL)
whose trials are tiny reward runs scored on validation, the chosen config read on test once; cancel and
resume continue the same study; the page and the API."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Role
from tests.factories import add_member, make_token, make_user
from tests.training.runs.conftest import TINY_CONFIG
from tests.training.runs.snapshot_files import synthetic_pairs, write_snapshot
from training.models import (
    JobStatus,
    RewardModel,
    RewardModelSweep,
    RunKind,
    RunMetric,
    TrainingRun,
    TrialState,
)
from training.rewardmodels.sweeps import study as studies
from training.rewardmodels.sweeps.config import sweep_config_parse
from training.rewardmodels.sweeps.services import (
    sweep_cancel,
    sweep_create,
    sweep_resume,
    sweep_step,
    sweep_trial_start,
    sweep_work,
)

pytestmark = pytest.mark.django_db

SPACE = {
    "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
    "use_margin": {"choices": [True, False]},
    "lora_r": {"choices": [0, 4]},
}


def sweep_config(n_trials: int, **extra) -> dict:
    return {"space": SPACE, "n_trials": n_trials, "sampler": "random", "base": TINY_CONFIG, **extra}


@pytest.fixture
def engineer(project):
    user = make_user(Role.ENGINEER)
    add_member(project, user, Role.ENGINEER)
    return user


@pytest.fixture
def api(engineer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(engineer, ['train'])}")
    return client


@pytest.fixture
def split_reads(monkeypatch):
    """Every snapshot split a sweep reads, in order (the real reader, wrapped where each module calls it)."""
    import training.rewardmodels.evaluation as evaluation
    import training.rewardmodels.sweeps.trial as trial
    import training.rewardmodels.trainer as trainer

    reads: list[str] = []
    for module in (evaluation, trial, trainer):
        real = module.read_snapshot_split

        def spy(artifact_dir, split, _real=real):
            reads.append(split)
            return _real(artifact_dir, split)

        monkeypatch.setattr(module, "read_snapshot_split", spy)
    return reads


def optuna_trials(sweep):
    return studies.study_load(name=sweep.study_name, cfg=sweep_config_parse(sweep.config), seed=0).trials


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"space": {"dropout": {"low": 0.0, "high": 0.1}}}, "config.space.dropout"),
        ({"space": {"learning_rate": {"low": 1e-3, "high": 1e-3}}}, "config.space.learning_rate.high"),
        ({"space": {"learning_rate": {"low": 1e-2, "high": 1e-4}}}, "config.space.learning_rate.high"),
        ({"space": {"max_length": {"choices": []}}}, "config.space.max_length.choices"),
        ({"space": {"use_margin": {"low": 0, "high": 1}}}, "config.space.use_margin.choices"),
        (
            {"space": {"learning_rate": {"low": 0.0, "high": 1e-3, "log": True}}},
            "config.space.learning_rate.low",
        ),
        ({"space": {}}, "config.space"),
        ({"n_trials": 65}, "config"),  # over PREFLAB_MAX_SWEEP_TRIALS (64)
        ({"space": {"max_length": {"choices": [128, 40000]}}}, "config"),  # over PREFLAB_MAX_SEQUENCE_TOKENS
        ({"n_trials": 2, "parallelism": 3}, "config.parallelism"),
        ({"objective": "f1"}, "config.objective"),
        ({"base": {"lr": 0.1}}, "config.base.lr"),
        ({"trials": 3}, "config.trials"),
    ],
)
def test_bad_sweep_configs_are_refused_at_creation_naming_the_field(api, tiny_snapshot, config, field):
    response = api.post(
        "/api/v1/reward-sweeps/", {"snapshot_id": tiny_snapshot.pk, "config": config}, format="json"
    )
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert field in error["fields"], error
    if field == "config":
        assert "over the limit" in error["message"] and "PREFLAB_MAX_" in error["message"]
    assert not RewardModelSweep.objects.exists() and not TrainingRun.objects.exists()


def test_a_snapshot_without_validation_pairs_is_refused(api, project):
    snapshot = write_snapshot(
        project, {"train": synthetic_pairs(8, seed=1), "test": synthetic_pairs(4, seed=3)}
    )
    response = api.post("/api/v1/reward-sweeps/", {"snapshot_id": snapshot.pk}, format="json")
    assert response.status_code == 400 and "snapshot" in response.json()["error"]["fields"]
    assert not RewardModelSweep.objects.exists()


def test_the_trial_cap_is_a_setting(api, tiny_snapshot, settings):
    settings.PREFLAB_MAX_SWEEP_TRIALS = 2
    response = api.post(
        "/api/v1/reward-sweeps/",
        {"snapshot_id": tiny_snapshot.pk, "config": {"n_trials": 3}},
        format="json",
    )
    assert response.status_code == 400
    assert (
        "config.n_trials: 3 is over the limit of 2 (PREFLAB_MAX_SWEEP_TRIALS)"
        in response.json()["error"]["message"]
    )


@pytest.mark.slow
@pytest.mark.usefixtures("require_postgres")
def test_sweep_trains_trials_on_validation_and_reads_test_once_for_the_chosen_config(
    client, engineer, tiny_snapshot, tiny_reward_model_dir, split_reads
):
    sweep = sweep_create(
        snapshot=tiny_snapshot, base_model=str(tiny_reward_model_dir), config=sweep_config(3), enqueue=False
    )
    sweep = sweep_work(sweep_id=sweep.pk)
    assert sweep.status == JobStatus.SUCCEEDED, (sweep.status_reason, sweep.trials.values("state"))

    trials = list(sweep.trials.select_related("run").order_by("number"))
    assert [t.number for t in trials] == [0, 1, 2]
    for t in trials:
        assert t.state == TrialState.COMPLETE and t.run.kind == RunKind.REWARD
        assert t.run.status == JobStatus.SUCCEEDED and t.run.summary["objective_split"] == "validation"
        assert t.value == t.validation["accuracy"] and t.validation["n"] == 4
        assert "eval" not in t.run.summary  # a trial never evaluates on test
        names = set().union(*RunMetric.objects.filter(run=t.run).values_list("values", flat=True))
        assert {"loss", "accuracy", "val_accuracy", "val_loss"} <= names  # live curves, then the objective
        assert t.run.config["use_margin"] == t.params["use_margin"]
        assert t.run.config["use_lora"] == (t.params["lora_r"] > 0)
    best = max(trials, key=lambda t: (t.value, -t.number))
    assert sweep.best_trial_number == best.number and sweep.best_value == best.value
    assert sweep.chosen_config == best.run.config

    # The chosen config was trained once more and that run alone read the test split, once.
    assert split_reads.count("test") == 1 and split_reads.count("validation") == 3
    assert sweep.test_evaluations == 1
    final = sweep.final_run
    assert final.status == JobStatus.SUCCEEDED and final.config == sweep.chosen_config
    assert RewardModel.objects.get().run_id == final.pk  # trials register nothing
    result = sweep.test_result
    assert result["split"] == "test" and result["n"] == 12 and result["run_id"] == final.pk
    low, high = result["accuracy_ci95"]
    assert low <= result["accuracy"] <= high

    in_study = optuna_trials(sweep)
    assert [(t.number, t.state.name, t.value) for t in in_study] == [
        (t.number, "COMPLETE", t.value) for t in trials
    ]

    # The page: the trials as a table (params, validation, state, run links) and the objective plot.
    client.force_login(engineer)
    page = client.get(reverse("training:sweep_detail", args=[sweep.pk])).content.decode()
    assert page.count("<circle") == 3 and "Validation accuracy by trial" in page
    for t in trials:
        assert reverse("training:run_detail", args=[t.run_id]) in page
    assert "learning_rate" in page and "use_margin" in page and "Chosen config on the test split" in page
    listed = client.get(reverse("training:sweep_list")).content.decode()
    assert f"#{sweep.pk}" in listed and "Start sweep" in listed

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(engineer, ['train'])}")
    detail = api.get(f"/api/v1/reward-sweeps/{sweep.pk}/").json()
    assert [t["number"] for t in detail["trials"]] == [0, 1, 2] and detail["test_evaluations"] == 1
    assert detail["trials"][0]["run_status"] == "succeeded"


@pytest.mark.slow
@pytest.mark.usefixtures("require_postgres")
def test_cancel_stops_new_trials_and_resume_continues_the_same_study(tiny_snapshot, tiny_reward_model_dir):
    sweep = sweep_create(
        snapshot=tiny_snapshot, base_model=str(tiny_reward_model_dir), config=sweep_config(3), enqueue=False
    )
    assert sweep_step(sweep_id=sweep.pk)  # trial 0 runs to the end
    queued = sweep_trial_start(sweep_id=sweep.pk)  # trial 1 is queued ...
    running = TrainingRun.objects.get(pk=queued.run_id)
    TrainingRun.objects.filter(pk=running.pk).update(status=JobStatus.RUNNING)  # ... as if a worker took it

    sweep = sweep_cancel(sweep=sweep)
    assert sweep.status == JobStatus.CANCELLED
    running.refresh_from_db()
    assert running.cancel_requested  # the ordinary run cancel: it stops at its next training step
    assert not sweep_step(sweep_id=sweep.pk)  # no new trial starts
    assert sweep.trials.count() == 2
    # what the trial's executor does at its next step (RunCancelled -> the run ends cancelled)
    TrainingRun.objects.filter(pk=running.pk).update(status=JobStatus.CANCELLED)

    sweep = sweep_resume(sweep=sweep, enqueue=False)
    sweep = sweep_work(sweep_id=sweep.pk)
    assert sweep.status == JobStatus.SUCCEEDED, sweep.status_reason
    states = list(sweep.trials.order_by("number").values_list("number", "state"))
    # the cancelled trial is not counted: two more ran, numbered on from the same study
    assert states == [(0, "complete"), (1, "cancelled"), (2, "complete"), (3, "complete")]
    in_study = optuna_trials(sweep)
    assert [(t.number, t.state.name) for t in in_study] == [
        (0, "COMPLETE"),
        (1, "FAIL"),
        (2, "COMPLETE"),
        (3, "COMPLETE"),
    ]
    assert sweep.test_evaluations == 1


@pytest.mark.usefixtures("require_postgres")
def test_api_creates_cancels_and_resumes_and_is_for_engineers(api, project, tiny_snapshot):
    created = api.post(
        "/api/v1/reward-sweeps/",
        {"snapshot_id": tiny_snapshot.pk, "base_model": "minilm", "config": {"n_trials": 2}},
        format="json",
    )
    assert created.status_code == 202, created.json()
    body = created.json()
    assert body["status"] == "queued" and body["config"]["n_trials"] == 2
    assert body["config"]["space"]["learning_rate"]["log"] is True  # the default space
    sweep = RewardModelSweep.objects.get(pk=body["id"])
    # the study exists in the database; its first trial, queued, is the one-click defaults (start_from_base)
    [waiting] = optuna_trials(sweep)
    assert waiting.state.name == "WAITING" and waiting.number == 0
    assert waiting.system_attrs["fixed_params"] == {
        "learning_rate": 5e-5,
        "num_train_epochs": 1,
        "max_length": 512,
        "truncate_prompt_left": True,
        "use_margin": True,
        "lora_r": 0,
        "weight_decay": 0.0,
    }

    listed = api.get("/api/v1/reward-sweeps/").json()
    assert [s["id"] for s in listed["results"]] == [sweep.pk]
    cancelled = api.post(f"/api/v1/reward-sweeps/{sweep.pk}/cancel/")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    assert api.post(f"/api/v1/reward-sweeps/{sweep.pk}/cancel/").status_code == 409
    resumed = api.post(f"/api/v1/reward-sweeps/{sweep.pk}/resume/")
    assert resumed.status_code == 202 and resumed.json()["status"] == "running"
    assert resumed.json()["study_name"] == sweep.study_name

    annotator = make_user(Role.ANNOTATOR)
    add_member(project, annotator, Role.ANNOTATOR)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(annotator, ['train'])}")
    assert other.get("/api/v1/reward-sweeps/").status_code == 403
    assert (
        other.post("/api/v1/reward-sweeps/", {"snapshot_id": tiny_snapshot.pk}, format="json").status_code
        == 403
    )
