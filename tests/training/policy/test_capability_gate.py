"""The capability gate as a job: queued by a succeeded policy run, base / SFT / policy on the task sets,
rows in PostgreSQL and the ``summary["capability"]`` contract, cancel, config refusal, API and page."""

import pytest
from django.urls import reverse

from annotation.models import Role
from tests.factories import make_prompt, make_user, token_client
from tests.training.policy.conftest import (
    assert_gate_config_refused,
    cancel_on_first_row,
    finished_policy_run,
)
from training import jobs
from training.models import CapabilityResult, JobStatus, RunKind, TrainingRun
from training.policy import executors  # noqa: F401  (registers the executors)
from training.policy.capability.intervals import ScoreInterval
from training.policy.capability.services import capability_result_record, gate_run_create
from training.policy.services import policy_run_create

pytestmark = pytest.mark.django_db

SMALL_GATE = {"max_items": 2, "max_new_tokens": 4, "batch_size": 4, "bootstrap_samples": 50}


@pytest.mark.slow  # a GRPO step and 16 generations: ~20 s alone, more on a loaded machine
def test_grpo_run_queues_the_gate_which_scores_sft_and_policy(tiny_causal_lm_dir, engineer_project):
    engineer, project = engineer_project
    for i in range(6):
        make_prompt(project, f"Tell me about {i}")
    run = policy_run_create(
        kind=RunKind.GRPO,
        base_model=str(tiny_causal_lm_dir),
        project=project,
        user=engineer,
        enqueue=False,
        config={
            "algorithm": {
                "max_steps": 1,
                "per_device_train_batch_size": 4,
                "num_generations": 4,
                "max_completion_length": 4,
            },
            "reward": {"type": "rule", "name": "vowels"},
            "battle": {"enabled": False},
            "gate": {**SMALL_GATE, "sets": ["arithmetic", "format"]},
        },
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.status_reason
    gate = TrainingRun.objects.get(kind=RunKind.GATE)
    assert gate.status == JobStatus.QUEUED and gate.config["policy_run_id"] == run.pk
    assert gate.config["models"] == {"sft": str(tiny_causal_lm_dir), "policy": run.output_dir}
    assert run.summary["capability"] == {"gate_run_id": gate.pk, "status": "queued", "sets": {}}

    jobs.run_execute(run_id=gate.pk)
    gate.refresh_from_db()
    assert gate.status == JobStatus.SUCCEEDED, gate.status_reason
    assert gate.step == gate.total_steps == 2 * 2 * 2  # models x sets x items
    rows = CapabilityResult.objects.filter(run=gate)
    assert sorted(rows.values_list("model_role", "task_set")) == [
        ("policy", "arithmetic"),
        ("policy", "format"),
        ("sft", "arithmetic"),
        ("sft", "format"),
    ]
    for row in rows:
        assert row.policy_run_id == run.pk and row.n == 2
        assert 0 <= row.ci_low <= row.score <= row.ci_high <= 1
        assert [d["id"] for d in row.details] == (
            ["arit-01", "arit-02"] if row.task_set == "arithmetic" else ["form-01", "form-02"]
        )
    # The 4-token answers of a random model cannot end at EOS: the format set fails them all.
    assert set(rows.filter(task_set="format").values_list("score", flat=True)) == {0.0}
    run.refresh_from_db()
    cap = run.summary["capability"]
    assert cap["gate_run_id"] == gate.pk and cap["status"] == "succeeded"
    assert set(cap["sets"]) == {"arithmetic", "format"}
    cell = cap["sets"]["arithmetic"]["policy"]
    row = rows.get(task_set="arithmetic", model_role="policy")
    assert cell == {"score": row.score, "low": row.ci_low, "high": row.ci_high, "n": 2}


def test_disabled_gate_is_recorded_and_queues_nothing(tiny_causal_lm_dir, engineer_project):
    engineer, project = engineer_project
    run = policy_run_create(
        kind=RunKind.GRPO,
        base_model=str(tiny_causal_lm_dir),
        project=project,
        user=engineer,
        enqueue=False,
        config={
            "algorithm": {"max_steps": 1, "per_device_train_batch_size": 2, "num_generations": 2,
                          "max_completion_length": 2},
            "prompts": {"source": "list", "items": ["a", "b", "c"]},
            "reward": {"type": "rule", "name": "vowels"},
            "battle": {"enabled": False},
            "gate": {"enabled": False},
        },
    )  # fmt: skip
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.status_reason
    assert run.summary["capability"] == {"gate_run_id": None, "status": "disabled", "sets": {}}
    assert not TrainingRun.objects.filter(kind=RunKind.GATE).exists()


def test_cancel_mid_way_stops_the_gate(tiny_causal_lm_dir, engineer_project, settings):
    engineer, project = engineer_project
    policy = finished_policy_run(project, engineer, tiny_causal_lm_dir, settings)
    gate = gate_run_create(policy_run=policy, config={**SMALL_GATE, "sets": ["factual"]}, enqueue=False)

    with cancel_on_first_row(CapabilityResult):
        jobs.run_execute(run_id=gate.pk)
    gate.refresh_from_db()
    assert gate.status == JobStatus.CANCELLED
    # The SFT model was scored before the cancel; the policy never was.
    assert list(CapabilityResult.objects.filter(run=gate).values_list("model_role", flat=True)) == ["sft"]
    policy.refresh_from_db()
    assert policy.summary["capability"]["status"] == "cancelled"


@pytest.mark.parametrize(
    ("gate", "field"),
    [
        ({"sets": ["instruction", "trivia"]}, "gate.sets"),
        ({"max_items": 0}, "gate.max_items"),
        ({"max_new_tokens": "many"}, "gate.max_new_tokens"),
        ({"bootstrap_samples": 10**6}, "gate.bootstrap_samples"),
        ({"tolerance": 0.1}, "gate.tolerance"),
    ],
)
def test_bad_gate_configs_are_400_and_create_nothing(
    gate, field, tiny_causal_lm_dir, engineer_project, settings
):
    engineer, project = engineer_project
    make_prompt(project, "Hello?")
    policy = finished_policy_run(project, engineer, tiny_causal_lm_dir, settings)
    assert_gate_config_refused(engineer, project, policy, gate, field)


def test_api_starts_and_lists_and_page_shows_scores(tiny_causal_lm_dir, engineer_project, settings, client):
    engineer, project = engineer_project
    policy = finished_policy_run(project, engineer, tiny_causal_lm_dir, settings)
    api = token_client(engineer, ("train",))
    url = reverse("policy-run-capability", args=[policy.pk])
    resp = api.post(url, {"gate": {"sets": ["arithmetic"], "max_items": 3}}, format="json")
    assert resp.status_code == 202, resp.content
    gate = TrainingRun.objects.get(pk=resp.json()["id"])
    assert gate.kind == RunKind.GATE and gate.config["gate"]["max_items"] == 3
    annotator = make_user(Role.ANNOTATOR)
    assert token_client(annotator, ("train",)).post(url, {}, format="json").status_code == 403
    queued = TrainingRun.objects.create(kind=RunKind.PPO, project=project, base_model="x")
    assert api.post(reverse("policy-run-capability", args=[queued.pk]), {}, format="json").status_code == 400

    for role, score in (("sft", 0.5), ("policy", 0.25)):
        capability_result_record(
            gate_run=gate,
            role=role,
            model_path=gate.config["models"][role],
            task_set="arithmetic",
            interval=ScoreInterval(score, score - 0.125, score + 0.375, 4),
            details=[{"id": "arit-01", "score": 1.0}],
        )
    listed = api.get(url).json()
    assert listed["capability"]["sets"]["arithmetic"]["policy"] == {
        "score": 0.25,
        "low": 0.125,
        "high": 0.625,
        "n": 4,
    }
    assert {(r["model_role"], r["score"]) for r in listed["results"]} == {("sft", 0.5), ("policy", 0.25)}
    assert api.get(url, {"gate_run_id": gate.pk + 1}).json()["results"] == []
    assert api.get(url, {"gate_run_id": "x"}).status_code == 400

    client.force_login(engineer)
    page = client.get(reverse("training:policy_detail", args=[policy.pk])).content.decode()
    assert "Capability regressions" in page and 'id="capability-results"' in page
    for number in ("0.500", "0.250", "[0.125, 0.625]", "[0.375, 0.875]", "n=4"):
        assert number in page, number
    gate_page = client.get(reverse("training:run_detail", args=[gate.pk]))
    assert gate_page.status_code == 200 and "run-progress" in gate_page.content.decode()
