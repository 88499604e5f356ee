"""A real lineage chain in the database: judged tasks -> a snapshot built by the snapshot service -> a reward
model registered, evaluated and promoted by the registry -> an SFT run on the snapshot -> a PPO run that
starts from the SFT model and is rewarded by the reward model (run rows as the executors leave them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from annotation.models import Judgment, Role
from tests.factories import add_member, make_project, make_prompt, make_task, make_user
from training.datasets.services import snapshot_build, snapshot_create
from training.models import DatasetSnapshot, JobStatus, RewardModel, RunKind, TrainingRun
from training.rewardmodels.registry import PromotionGate, reward_model_promote, reward_model_register


@dataclass
class Chain:
    project: object
    engineer: object
    annotators: list
    snapshot: DatasetSnapshot
    reward_run: TrainingRun
    rm: RewardModel
    sft: TrainingRun
    ppo: TrainingRun


def _folder(*parts: str) -> Path:
    path = Path(settings.ARTIFACT_DIR).joinpath(*parts)
    path.mkdir(parents=True)
    return path


def build_chain(*, tasks: int, annotators: int, capture) -> Chain:
    """The whole chain; ``capture`` is pytest-django's ``django_capture_on_commit_callbacks`` (the card
    files are written after the commits of the registry and the run finishing, as in production)."""
    engineer = make_user(Role.ENGINEER)
    people = [make_user(Role.ANNOTATOR) for _ in range(annotators)]
    project = make_project(members=[(engineer, Role.ENGINEER)])
    for user in people:
        add_member(project, user)
    for i in range(tasks):
        prompt = make_prompt(project, f"Question {i} of {project.name}: how do I do thing {i}?")
        task = make_task(project, prompt=prompt, a=f"Good detailed answer {i}", b=f"Bad {i}")
        for j, user in enumerate(people):
            Judgment.objects.create(task=task, annotator=user, choice="A" if (i + j) % 3 else "B", strength=2)
    snapshot = snapshot_create(user=engineer, spec={"projects": [project.pk]}, name="lineage", enqueue=False)
    snapshot = snapshot_build(snapshot_id=snapshot.pk)
    assert snapshot.status == JobStatus.SUCCEEDED, snapshot.error

    rm_dir = _folder("reward_models", f"lineage-{snapshot.pk}")
    reward_run = TrainingRun.objects.create(
        kind=RunKind.REWARD,
        project=project,
        snapshot=snapshot,
        base_model="tiny-rm-base",
        config={"learning_rate": 0.001, "num_train_epochs": 1},
        status=JobStatus.RUNNING,
        output_dir=str(rm_dir),
    )
    with capture(execute=True):
        rm = reward_model_register(
            run=reward_run,
            artifact_dir=str(rm_dir),
            card={"snapshot_hash": snapshot.content_hash, "params": reward_run.config, "max_length": 64},
            metrics={"accuracy": 0.75, "n": 4, "reliability": [{"bin": 0, "n": 4}]},
        )
    with capture(execute=True):
        reward_model_promote(reward_model=rm, user=engineer, gate=PromotionGate(min_accuracy=0.6))
    with capture(execute=True):
        reward_run.status = JobStatus.SUCCEEDED
        reward_run.save(update_fields=["status"])

    sft_dir = _folder("policies", f"sft-{snapshot.pk}")
    sft = TrainingRun.objects.create(
        kind=RunKind.SFT,
        project=project,
        snapshot=snapshot,
        base_model="tiny-lm",
        config={"algorithm": {"source": "snapshot", "max_steps": 2}},
        status=JobStatus.SUCCEEDED,
        output_dir=str(sft_dir),
        summary={"model_dir": str(sft_dir), "steps": 2, "train_loss": 1.5},
    )
    ppo_dir = _folder("policies", f"ppo-{snapshot.pk}")
    with capture(execute=True):
        ppo = TrainingRun.objects.create(
            kind=RunKind.PPO,
            project=project,
            base_model=str(sft_dir),
            config={"algorithm": {"steps": 2}, "reward": {"type": "active"}},
            status=JobStatus.SUCCEEDED,
            output_dir=str(ppo_dir),
            summary={
                "model_dir": str(ppo_dir),
                "reward": {"type": "active", "reward_model_id": rm.pk, "version": rm.version},
                "reward_first": 0.1,
                "reward_last": 0.4,
                "kl_last": 0.02,
                "warnings": [{"detector": "length_inflation", "step": 2}],
                "battle": {"project_id": None, "skipped": "no held-out prompts"},
            },
        )
    return Chain(project, engineer, people, snapshot, reward_run, rm, sft, ppo)


@pytest.fixture
def chain(db, django_capture_on_commit_callbacks) -> Chain:
    return build_chain(tasks=6, annotators=3, capture=django_capture_on_commit_callbacks)
