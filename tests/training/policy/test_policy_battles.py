"""A battle among finished policy runs of one SFT model: a DPO and a PPO run side by side in one blind battle
project (through the job runner), and the requests refused at creation."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import ComparisonTask, TaskKind, TokenScope
from tests.factories import make_project, make_token
from tests.training.runs.snapshot_files import synthetic_pairs, write_snapshot
from training import jobs
from training.models import JobStatus, RunKind, TrainingRun
from training.policy.services import policy_run_create

pytestmark = pytest.mark.django_db

RULE = {"type": "rule", "name": "vowels"}


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, [TokenScope.TRAIN])}")
    return client


def _finished(project, kind=RunKind.PPO, base_model="sft-a", status=JobStatus.SUCCEEDED, held=("p1", "p2")):
    """A finished policy run row (no training: what creation checks is the row)."""
    return TrainingRun.objects.create(
        kind=kind,
        project=project,
        base_model=base_model,
        status=status,
        summary={"model_dir": "/nowhere", "held_out_prompts": list(held)},
    )


def _post(user, run_ids, config=None):
    body = {"run_ids": run_ids, "config": config or {"reward": RULE}}
    return _api(user).post("/api/v1/policy-battles/", body, format="json")


@pytest.mark.slow
def test_dpo_and_ppo_of_one_sft_model_battle_side_by_side(engineer_project, tiny_causal_lm_dir):
    engineer, project = engineer_project
    snapshot = write_snapshot(project, {"train": synthetic_pairs(12, seed=4)})
    sft = str(tiny_causal_lm_dir)
    # Same snapshot prompts, held_out and seed: both runs hold out the same prompt.
    battle = {"held_out": 1, "max_new_tokens": 4}
    dpo = policy_run_create(
        kind=RunKind.DPO, base_model=sft, snapshot=snapshot, user=engineer, enqueue=False,
        config={"algorithm": {"max_steps": 2, "per_device_train_batch_size": 4, "learning_rate": 1e-3,
                              "max_length": 96, "max_prompt_length": 48},
                "reward": RULE, "battle": battle},
    )  # fmt: skip
    ppo = policy_run_create(
        kind=RunKind.PPO, base_model=sft, snapshot=snapshot, user=engineer, enqueue=False,
        config={"algorithm": {"steps": 1, "batch_size": 2, "mini_batch_size": 2, "ppo_epochs": 1,
                              "max_new_tokens": 4},
                "prompts": {"source": "snapshot"}, "reward": RULE, "battle": battle},
    )  # fmt: skip
    for run in (dpo, ppo):
        jobs.run_execute(run_id=run.pk)
        run.refresh_from_db()
        assert run.status == JobStatus.SUCCEEDED, run.status_reason
    assert dpo.summary["held_out_prompts"] == ppo.summary["held_out_prompts"]

    resp = _post(engineer, [dpo.pk, ppo.pk], {"reward": RULE, "battle": {"max_new_tokens": 4}})
    assert resp.status_code == 202, resp.content[:400]
    run = TrainingRun.objects.get(pk=resp.json()["id"])
    assert run.kind == RunKind.BATTLE and run.base_model == sft and run.project == project
    assert run.config["prompts"]["items"] == dpo.summary["held_out_prompts"]
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.status_reason
    assert (run.step, run.total_steps) == (4, 4)  # sft, dpo and ppo answered, then the project

    report = run.summary["battle"]
    labels = {"sft", f"dpo-{dpo.pk}", f"ppo-{ppo.pk}"}
    assert set(report["models"]) == labels and set(run.summary["models"]) == labels
    tasks = ComparisonTask.objects.filter(project_id=report["project_id"])
    assert tasks.count() == report["tasks_created"] == 3 - report["identical_pairs"]
    assert set(tasks.values_list("kind", flat=True)) <= {TaskKind.BATTLE}
    names = set(tasks.values_list("candidate_a__model_name", flat=True)) | set(
        tasks.values_list("candidate_b__model_name", flat=True)
    )
    assert names <= labels
    # The run page and the detail API show the battle like any evaluation gate.
    detail = _api(engineer).get(f"/api/v1/policy-runs/{run.pk}/").json()
    assert detail["battle_verdict"]["project_id"] == report["project_id"]


def test_runs_of_different_sft_models_are_refused(engineer_project):
    engineer, project = engineer_project
    a, b = _finished(project, base_model="sft-a"), _finished(project, kind=RunKind.DPO, base_model="sft-b")
    resp = _post(engineer, [a.pk, b.pk])
    assert resp.status_code == 400, resp.content[:400]
    message = " ".join(resp.json()["error"]["fields"]["run_ids"])
    assert "different SFT models" in message and "sft-a" in message and "sft-b" in message
    assert not TrainingRun.objects.filter(kind=RunKind.BATTLE).exists()


@pytest.mark.parametrize(
    "case", ["one_run", "unfinished", "sft_run", "hidden", "too_many", "no_common_prompt"]
)
def test_bad_battle_requests_are_400_and_no_row(engineer_project, settings, case):
    engineer, project = engineer_project
    a = _finished(project)
    other = {
        "one_run": lambda: a,
        "unfinished": lambda: _finished(project, status=JobStatus.RUNNING),
        "sft_run": lambda: _finished(project, kind=RunKind.SFT),
        "hidden": lambda: _finished(make_project()),  # a project the engineer is not a member of
        "too_many": lambda: _finished(project),
        "no_common_prompt": lambda: _finished(project, held=("p3",)),
    }[case]()
    if case == "too_many":
        settings.PREFLAB_MAX_BATTLE_RUNS = 1
    resp = _post(engineer, [a.pk, other.pk])
    assert resp.status_code == 400, resp.content[:400]
    field = "config" if case == "no_common_prompt" else "run_ids"
    assert field in resp.json()["error"]["fields"]
    if case == "too_many":
        assert "PREFLAB_MAX_BATTLE_RUNS" in resp.json()["error"]["message"]
    assert not TrainingRun.objects.filter(kind=RunKind.BATTLE).exists()


def test_listed_prompts_and_the_form(engineer_project):
    engineer, project = engineer_project
    a, b = _finished(project, kind=RunKind.DPO), _finished(project, held=())
    config = {"reward": RULE, "prompts": {"source": "list", "items": ["x", "y", "x", " "]}}
    resp = _post(engineer, [a.pk, b.pk], config)
    assert resp.status_code == 202, resp.content[:400]
    assert TrainingRun.objects.get(pk=resp.json()["id"]).config["prompts"]["items"] == ["x", "y"]
    # The policy list page's form queues the same; a bad id list is a message, not a row.
    page = Client()
    page.force_login(engineer)
    form = {"run_ids": f"{a.pk}, {b.pk}", "config": '{"reward": {"type": "rule", "name": "vowels"}}'}
    html = page.post(reverse("training:policy_battle_create"), form, follow=True).content.decode()
    assert "Could not start the battle" in html and "no prompt to battle on" in html  # b held nothing out
    form["config"] = (
        '{"reward": {"type": "rule", "name": "vowels"}, "prompts": {"source": "list", "items": ["q"]}}'
    )
    resp = page.post(reverse("training:policy_battle_create"), form)
    assert resp.status_code == 302
    assert TrainingRun.objects.filter(kind=RunKind.BATTLE).count() == 2
    # The queued battle has its run page (like any policy run), linking the runs it compares.
    html = page.get(resp["Location"]).content.decode()
    assert "Policy battle" in html and f'href="{reverse("training:policy_detail", args=[a.pk])}"' in html
