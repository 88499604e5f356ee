"""Policy runs through the job machinery: SFT -> PPO with the project's active RM -> battle project."""

import json

import pytest

from annotation.models import ComparisonTask, Role, TaskKind
from tests.factories import add_member, make_project, make_prompt, make_user
from training import jobs
from training.models import JobStatus, RewardModel, RunKind, RunMetric
from training.policy import executors  # noqa: F401  (registers the executors)
from training.policy.services import policy_run_create
from training.policy.signals import policy_rollouts_sampled

pytestmark = pytest.mark.django_db

QUESTIONS = [
    "How do I bake bread?",
    "What is the capital of France?",
    "Tell me a joke.",
    "Say something kind.",
]


@pytest.fixture
def project_with_rm(tiny_reward_model_dir):
    engineer, annotator = make_user(Role.ENGINEER), make_user(Role.ANNOTATOR)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    add_member(project, annotator, Role.ANNOTATOR)
    for i in range(10):
        make_prompt(project, f"{QUESTIONS[i % 4]} (variant {i})")
    RewardModel.objects.create(
        project=project,
        version=1,
        base_model="tiny",
        artifact_dir=str(tiny_reward_model_dir),
        max_length=128,
        is_active=True,
    )
    return project, engineer, annotator


def _demos(tmp_path):
    path = tmp_path / "demos.jsonl"
    with path.open("w") as fh:
        for q in QUESTIONS * 4:
            fh.write(json.dumps({"prompt": q, "response": "Paris is the capital of France."}) + "\n")
    return path


def test_sft_then_ppo_then_battle(project_with_rm, tiny_causal_lm_dir, tmp_path, settings):
    project, engineer, annotator = project_with_rm
    sft = policy_run_create(
        kind=RunKind.SFT,
        base_model=str(tiny_causal_lm_dir),
        project=project,
        user=engineer,
        enqueue=False,
        config={
            "algorithm": {
                "source": "demonstrations",
                "demonstrations_path": str(_demos(tmp_path)),
                "max_steps": 4,
                "per_device_train_batch_size": 4,
                "learning_rate": 1e-3,
                "logging_steps": 1,
            }
        },
    )
    jobs.run_execute(run_id=sft.pk)
    sft.refresh_from_db()
    assert sft.status == JobStatus.SUCCEEDED, sft.status_reason
    assert sft.output_dir.startswith(str(settings.ARTIFACT_DIR / "policies"))
    assert (tmp_path / "x").parent.exists() and sft.summary["steps"] == 4
    assert RunMetric.objects.filter(run=sft).exists() and "loss" in sft.summary["latest"]

    received = []
    handler = lambda sender, run, rows, **kw: received.append((run.pk, rows))  # noqa: E731
    policy_rollouts_sampled.connect(handler)
    try:
        ppo = policy_run_create(
            kind=RunKind.PPO,
            base_model=sft.output_dir,
            project=project,
            user=engineer,
            enqueue=False,
            seed=3,
            config={
                "algorithm": {
                    "steps": 3,
                    "batch_size": 4,
                    "mini_batch_size": 2,
                    "ppo_epochs": 1,
                    "max_new_tokens": 6,
                },
                "prompts": {"source": "project"},
                "battle": {"held_out": 2, "max_new_tokens": 6},
            },
        )
        jobs.run_execute(run_id=ppo.pk)
    finally:
        policy_rollouts_sampled.disconnect(handler)
    ppo.refresh_from_db()
    assert ppo.status == JobStatus.SUCCEEDED, ppo.status_reason
    assert RunMetric.objects.filter(run=ppo).count() == 3
    for key in ("reward_mean", "kl", "entropy", "clip_fraction", "value_loss", "approx_kl", "distinct_2"):
        assert key in ppo.summary["latest"]
    assert ppo.summary["reward"]["reward_model_id"] == RewardModel.objects.get(project=project).pk
    assert ppo.summary["prompts"] == {"train": 8, "held_out": 2}
    assert (
        ppo.summary["samples"][-1]["step"] == 3
        and ppo.summary["samples"][-1]["items"][0]["response"] is not None
    )
    assert isinstance(ppo.summary["warnings"], list)
    assert ppo.summary and (settings.ARTIFACT_DIR / "policies" / f"run-{ppo.pk}" / "config.json").exists()
    rollouts = (
        (settings.ARTIFACT_DIR / "policies" / f"run-{ppo.pk}" / "rollouts.jsonl").read_text().splitlines()
    )
    assert len(rollouts) == 3 * 4 and received and received[0][0] == ppo.pk and len(received[0][1]) == 12
    # rewardsvc listens: the rollouts are in the spot-check queue, tied to the run.
    from rewardsvc.models import ScoredSample

    queued = ScoredSample.objects.filter(run_id=ppo.pk, source="rollout")
    assert queued.count() == 12 and all(s.response is not None for s in queued)

    battle = ppo.summary["battle"]
    assert set(battle["models"]) == {"base", "sft", "policy"}
    tasks = ComparisonTask.objects.filter(project_id=battle["project_id"])
    assert tasks.count() == battle["tasks_created"] == 2 * 3 - battle["identical_pairs"]
    assert set(tasks.values_list("kind", flat=True)) == {TaskKind.BATTLE}
    names = set(tasks.values_list("candidate_a__model_name", flat=True)) | set(
        tasks.values_list("candidate_b__model_name", flat=True)
    )
    assert names <= {"base", "sft", "policy"}
    held = set(ppo.summary["held_out_prompts"])
    assert set(tasks.values_list("prompt__text", flat=True)) == held
    assert tasks.first().project.memberships.filter(user=annotator).exists()


def test_ppo_without_active_rm_fails_with_reason(tiny_causal_lm_dir):
    project = make_project()
    make_prompt(project, "hello there")
    run = policy_run_create(
        kind=RunKind.PPO, base_model=str(tiny_causal_lm_dir), project=project, enqueue=False
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and "no active reward model" in run.status_reason


def test_grpo_run_with_rule_reward(tiny_causal_lm_dir, settings):
    project = make_project()
    for i in range(6):
        make_prompt(project, f"Tell me about {i}")
    run = policy_run_create(
        kind=RunKind.GRPO,
        base_model=str(tiny_causal_lm_dir),
        project=project,
        enqueue=False,
        config={
            "algorithm": {
                "max_steps": 2,
                "per_device_train_batch_size": 4,
                "num_generations": 4,
                "max_completion_length": 6,
            },
            "reward": {"type": "rule", "name": "vowels"},
            "battle": {"enabled": False},
        },
    )
    jobs.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.status_reason
    assert RunMetric.objects.filter(run=run).count() == 2
    assert "reward_mean" in run.summary["latest"] and run.summary["samples"][-1]["items"]
    assert (settings.ARTIFACT_DIR / "policies" / f"run-{run.pk}" / "model.safetensors").exists()
    assert run.summary["battle"] == {"skipped": "disabled"}


def test_create_rejects_bad_specs(tiny_causal_lm_dir):
    from django.core.exceptions import ValidationError

    project = make_project()
    with pytest.raises(ValidationError, match=r"config\.algorithm\.stepz.*unknown field"):
        policy_run_create(
            kind=RunKind.PPO,
            base_model="x",
            project=project,
            enqueue=False,
            config={"algorithm": {"stepz": 3}},
        )
    with pytest.raises(ValidationError, match="token_env"):
        policy_run_create(
            kind=RunKind.PPO,
            base_model="x",
            project=project,
            enqueue=False,
            config={"reward": {"type": "http", "url": "http://x", "token": "secret"}},
        )
    with pytest.raises(ValidationError):
        policy_run_create(kind=RunKind.SFT, base_model="x", project=project, enqueue=False)


def test_sft_on_snapshot_chosen_then_rloo_on_snapshot_prompts(tiny_causal_lm_dir, settings):
    from pathlib import Path

    from tests.training.runs.snapshot_files import synthetic_pairs, write_snapshot

    project = make_project()
    snapshot = write_snapshot(
        project, {"train": synthetic_pairs(8, seed=1), "test": synthetic_pairs(2, seed=2)}
    )
    sft = policy_run_create(
        kind=RunKind.SFT, base_model=str(tiny_causal_lm_dir), snapshot=snapshot, enqueue=False,
        config={"algorithm": {"source": "snapshot", "max_steps": 2, "per_device_train_batch_size": 4}},
    )  # fmt: skip
    assert sft.project == project
    jobs.run_execute(run_id=sft.pk)
    sft.refresh_from_db()
    assert sft.status == JobStatus.SUCCEEDED, sft.status_reason
    assert sft.summary["examples"] == 8 and sft.summary["chat_template"] is True
    assert json.loads((Path(sft.output_dir) / "preflab_sft.json").read_text())["base_model"] == str(
        tiny_causal_lm_dir
    )

    rloo = policy_run_create(
        kind=RunKind.RLOO, base_model=sft.output_dir, snapshot=snapshot, enqueue=False,
        config={
            "algorithm": {"max_steps": 1, "per_device_train_batch_size": 4, "num_generations": 2,
                          "max_completion_length": 4},
            "reward": {"type": "rule", "name": "length", "target": 20},
            "prompts": {"source": "snapshot"},
            "battle": {"held_out": 1, "max_new_tokens": 4},
        },
    )  # fmt: skip
    jobs.run_execute(run_id=rloo.pk)
    rloo.refresh_from_db()
    assert rloo.status == JobStatus.SUCCEEDED, rloo.status_reason
    distinct = {r["prompt"] for r in synthetic_pairs(8, seed=1)[0]}
    assert rloo.summary["prompts"] == {"train": len(distinct) - 1, "held_out": 1}
    assert set(rloo.summary["battle"]["models"]) == {"base", "sft", "policy"}
