"""DPO runs: config and snapshot refused at creation (API and form), a real DPO run on the tiny model through
the job runner (metrics, model directory, battle, cancel), and the loss types checked against TRL."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from django.db.models.signals import post_save
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import ComparisonTask, TokenScope
from tests.factories import make_token
from tests.training.runs.snapshot_files import pref_and_both_bad_rows, synthetic_pairs, write_snapshot
from training import jobs
from training.models import DatasetSnapshot, JobStatus, RunKind, RunMetric, TrainingRun
from training.policy.dpo import DPO_LOSS_TYPES, DPORunConfig
from training.policy.services import policy_run_create

pytestmark = pytest.mark.django_db


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, [TokenScope.TRAIN])}")
    return client


def _neutral_only(project, name="neutral"):
    rows, meta = pref_and_both_bad_rows()
    meta[0]["label_type"] = "tie"  # a tie and a both-bad row: no preference at all
    return write_snapshot(project, {"train": (rows, meta)}, name=name)


def test_loss_types_are_trls():
    from trl import DPOConfig

    help_text = DPOConfig.__dataclass_fields__["loss_type"].metadata["help"]
    assert set(re.findall(r"`'([a-z_]+)'`", help_text)) == set(DPO_LOSS_TYPES)


@pytest.mark.parametrize(
    ("algorithm", "field", "message"),
    [
        ({"loss_type": "sigmoidd"}, "config", "algorithm.loss_type: 'sigmoidd' is not one of sigmoid"),
        ({"beta": 0.0}, "config", "algorithm.beta: must be a number > 0"),
        ({"beta": -0.5}, "config", "algorithm.beta: must be a number > 0"),
        ({"label_smoothing": 0.7}, "config", "algorithm.label_smoothing: must be in [0, 0.5)"),
        ({"loss_type": "exo_pair"}, "config", "needs label_smoothing > 0"),
        ({"max_length": 64, "max_prompt_length": 64}, "config", "algorithm.max_prompt_length"),
        ({"max_steps": 0}, "config", "algorithm.max_steps"),
        ({"seed": 2**40}, "config", "algorithm.seed: must be from 0 to"),
        ({"split": "dev"}, "config", "algorithm.split"),
        ({"betta": 0.1}, "config.algorithm.betta", "unknown field"),
        ({"beta": "high"}, "config.algorithm.beta", "config.algorithm.beta"),
        ({"max_steps": 10**9}, "config", "algorithm.max_steps: 1000000000 is over the limit of 100000"),
        ({"per_device_train_batch_size": 10**6}, "config", "PREFLAB_MAX_BATCH_SIZE"),
        ({"max_length": 10**6}, "config", "PREFLAB_MAX_SEQUENCE_TOKENS"),
        ({"max_prompt_length": 10**6, "max_length": 10**6 + 1}, "config", "algorithm.max_prompt_length"),
    ],
)
def test_bad_dpo_config_is_400_and_no_row(engineer_project, algorithm, field, message):
    engineer, project = engineer_project
    snapshot = write_snapshot(project, {"train": synthetic_pairs(4)})
    body = {
        "kind": "dpo",
        "base_model": "tiny",
        "snapshot_id": snapshot.pk,
        "config": {"algorithm": algorithm},
    }
    resp = _api(engineer).post("/api/v1/policy-runs/", body, format="json")
    assert resp.status_code == 400, resp.content[:400]
    fields = resp.json()["error"]["fields"]
    assert message in " ".join(fields[field]), fields
    assert not TrainingRun.objects.exists()


def test_good_dpo_config_is_accepted(engineer_project):
    engineer, project = engineer_project
    snapshot = write_snapshot(project, {"train": synthetic_pairs(4)})
    algorithm = {"beta": 0.2, "loss_type": "ipo", "max_steps": 3, "reference_model": "tiny-ref", "seed": 5}
    body = {
        "kind": "dpo",
        "base_model": "tiny",
        "snapshot_id": snapshot.pk,
        "config": {"algorithm": algorithm},
    }
    resp = _api(engineer).post("/api/v1/policy-runs/", body, format="json")
    assert resp.status_code == 202, resp.content[:400]
    run = TrainingRun.objects.get()
    assert run.kind == RunKind.DPO and run.project == project and run.snapshot == snapshot
    stored = DPORunConfig.from_dict(run.config["algorithm"])
    assert (stored.beta, stored.loss_type, stored.reference_model, stored.seed) == (0.2, "ipo", "tiny-ref", 5)


def test_snapshot_without_preference_rows_is_refused_at_creation(engineer_project):
    engineer, project = engineer_project
    neutral = _neutral_only(project)
    body = {"kind": "dpo", "base_model": "tiny", "snapshot_id": neutral.pk, "config": {}}
    resp = _api(engineer).post("/api/v1/policy-runs/", body, format="json")
    assert resp.status_code == 400, resp.content[:400]
    message = " ".join(resp.json()["error"]["fields"]["snapshot"])
    assert "has no preference rows in its train split" in message
    # The launch form says the same, as a message, and writes nothing either.
    page = Client()
    page.force_login(engineer)
    form = {"kind": "dpo", "base_model": "tiny", "snapshot": neutral.pk, "config": "{}"}
    html = page.post(reverse("training:policy_create"), form, follow=True).content.decode()
    assert "has no preference rows in its train split" in html
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize("case", ["no_snapshot", "not_ready", "balance_says_none", "empty_split"])
def test_dpo_needs_a_ready_snapshot_with_preferences(engineer_project, case):
    from django.core.exceptions import ValidationError

    engineer, project = engineer_project
    snapshot = None
    if case == "not_ready":
        snapshot = DatasetSnapshot.objects.create(name="building", version=1, status=JobStatus.RUNNING)
        snapshot.projects.add(project)
    elif case == "balance_says_none":  # the builder's counts answer without reading the files
        snapshot = write_snapshot(project, {"train": synthetic_pairs(2)})
        DatasetSnapshot.objects.filter(pk=snapshot.pk).update(
            class_balance={"label_type": {"pref": 0, "tie": 2, "both_bad": 0}}
        )
        snapshot.refresh_from_db()
    elif case == "empty_split":
        snapshot = write_snapshot(project, {"test": synthetic_pairs(2)})
    with pytest.raises(ValidationError) as info:
        policy_run_create(
            kind=RunKind.DPO, base_model="tiny", snapshot=snapshot, project=project, enqueue=False
        )
    assert "snapshot" in info.value.message_dict
    assert not TrainingRun.objects.exists()


def _dpo_config(**algorithm):
    return {
        "algorithm": {
            "max_steps": 4,
            "per_device_train_batch_size": 4,
            "learning_rate": 1e-3,
            "beta": 0.1,
            "max_length": 96,
            "max_prompt_length": 48,
            "warmup_steps": 0.0,
            **algorithm,
        },
        "reward": {"type": "rule", "name": "vowels"},
        "battle": {"held_out": 1, "max_new_tokens": 4},
    }


def _training_snapshot(project):
    rows, meta = synthetic_pairs(16, seed=3)
    extra_rows, extra_meta = pref_and_both_bad_rows()  # one more pair and one both-bad row
    return write_snapshot(project, {"train": (rows + extra_rows, meta + extra_meta)}, name="dpo-data")


@pytest.mark.slow
def test_dpo_run_through_the_job_runner(engineer_project, tiny_causal_lm_dir):
    from transformers import AutoModelForCausalLM

    engineer, project = engineer_project
    snapshot = _training_snapshot(project)
    run = policy_run_create(
        kind=RunKind.DPO,
        base_model=str(tiny_causal_lm_dir),
        snapshot=snapshot,
        user=engineer,
        enqueue=False,
        config=_dpo_config(),
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.status_reason
    assert (run.step, run.total_steps) == (4, 4)

    rows = list(RunMetric.objects.filter(run=run).order_by("step").values_list("step", "values"))
    assert [step for step, _ in rows] == [1, 2, 3, 4]
    for _, values in rows:
        for name in ("loss", "rewards_chosen", "rewards_rejected", "rewards_margins", "rewards_accuracies"):
            assert math.isfinite(values[name]), (name, values)
        assert "logps_chosen" in values and "logps_rejected" in values
    # Step 1 is scored before any update: the policy is its reference, so every implicit reward is 0;
    # the updates then separate chosen from rejected answers.
    assert abs(rows[0][1]["rewards_margins"]) < 1e-6
    assert run.summary["margin_last"] > run.summary["margin_first"]
    assert run.summary["pairs"] == {"train": 17 - _held_pairs(run, snapshot), "neutral_left_out": 1}
    assert run.summary["reference_model"] == str(tiny_causal_lm_dir)

    model_dir = Path(run.summary["model_dir"])
    assert model_dir == Path(run.output_dir)
    AutoModelForCausalLM.from_pretrained(model_dir)  # a whole model directory
    assert (model_dir / "preflab_policy.json").read_text().count('"algorithm": "dpo"') == 1

    # The after-training path of the other kinds: the battle on the held-out prompt, scored by the reward.
    battle = run.summary["battle"]
    assert set(battle["models"]) == {"sft", "policy"}
    assert battle["tasks_created"] + battle["identical_pairs"] == 1
    assert ComparisonTask.objects.filter(project_id=battle["project_id"]).count() == battle["tasks_created"]
    assert run.summary["held_out_prompts"] and len(run.summary["held_out_prompts"]) == 1

    # The run page draws the DPO curves.
    page = Client()
    page.force_login(engineer)
    html = page.get(reverse("training:policy_detail", args=[run.pk])).content.decode()
    assert "DPO implicit reward" in html and "dpo-settings" in html


def _held_pairs(run, snapshot) -> int:
    """Preference pairs of the held-out prompts (kept out of training)."""
    from training.datasets.reader import preference_rows, read_snapshot_split

    rows, _, _ = preference_rows(*read_snapshot_split(snapshot.artifact_dir, "train"))
    return sum(1 for r in rows if r["prompt"] in run.summary["held_out_prompts"])


def test_dpo_run_cancelled_while_training_leaves_no_model(engineer_project, tiny_causal_lm_dir):
    engineer, project = engineer_project
    snapshot = _training_snapshot(project)
    config = _dpo_config(max_steps=6, per_device_train_batch_size=2)
    config["battle"] = {"enabled": False}
    run = policy_run_create(
        kind=RunKind.DPO, base_model=str(tiny_causal_lm_dir), snapshot=snapshot, enqueue=False, config=config
    )

    def cancel_on_first_metric(sender, instance, created, **kwargs):
        if created and instance.run_id == run.pk:
            jobs.run_cancel_request(run_id=run.pk)  # an operator presses cancel while the run trains

    post_save.connect(cancel_on_first_metric, sender=RunMetric)
    try:
        jobs.run_execute(run_id=run.pk)
    finally:
        post_save.disconnect(cancel_on_first_metric, sender=RunMetric)
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED, run.status_reason
    assert RunMetric.objects.filter(run=run).exists()
    assert not Path(run.output_dir).exists()  # the half-trained model never appears
