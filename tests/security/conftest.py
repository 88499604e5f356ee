"""Fixtures for the security tests: a small world with one object of every kind a route can name, the
people of every role, and helpers to call a route as each of them (session or token of one scope)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from annotation.models import (
    AnnotatorFlag,
    ApiToken,
    Choice,
    ComparisonTask,
    Judgment,
    Project,
    Role,
    TaskStatus,
    TokenScope,
)
from rewardsvc.models import ScoredSample
from tests.factories import (
    add_member,
    make_candidate,
    make_project,
    make_prompt,
    make_task,
    make_token,
    make_user,
)
from training.models import (
    DatasetSnapshot,
    JobStatus,
    ModelEvaluation,
    PolicyVersion,
    RewardModel,
    RunKind,
    RunMetric,
    TrainingRun,
)

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"

# Who calls: the roles of the issue. "outsider" is an annotator of another project.
ROLES = ("annotator", "reviewer", "engineer", "admin", "outsider")
SCOPES = tuple(s.value for s in TokenScope)


@dataclass
class World:
    project: Project
    other_project: Project
    users: dict[str, User]
    task: ComparisonTask
    review_task: ComparisonTask
    judgment: Judgment
    flag: AnnotatorFlag
    snapshot: DatasetSnapshot
    run: TrainingRun
    policy_run: TrainingRun
    reward_model: RewardModel
    sample: ScoredSample
    policy_version: PolicyVersion | None = None
    sweep_id: int = 0
    annotator_token_id: int = 0
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def ids(self) -> dict[str, object]:
        """URL kwargs for every route of the project (by the name of the URL parameter)."""
        return {
            "project_id": self.project.pk,
            "task_id": self.task.pk,
            "judgment_id": self.judgment.pk,
            "prompt_id": self.task.prompt_id,
            "annotator_id": self.users["annotator"].pk,
            "flag_id": self.flag.pk,
            "snapshot_id": self.snapshot.pk,
            "run_id": self.run.pk,
            "model_id": self.reward_model.pk,
            "fmt": "trl",
            "user_id": self.users["annotator"].pk,
            "policy_run_id": self.policy_run.pk,
            "policy_id": self.policy_version.pk,
            "sweep_id": self.sweep_id,
        }

    def token(self, role: str, scope: str) -> str:
        key = (role, scope)
        if key not in self.tokens:
            self.tokens[key] = make_token(self.users[role], [scope], name=f"{role}-{scope}")
        return self.tokens[key]

    def client_for(self, role: str, scope: str | None = None, *, enforce_csrf: bool = False) -> Client:
        """A test client as ``role``: logged in (session) when ``scope`` is None, else sending a token
        that carries only ``scope`` (and no session)."""
        client = Client(enforce_csrf_checks=enforce_csrf)
        if scope is None:
            client.force_login(self.users[role])
        else:
            client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {self.token(role, scope)}"
        return client


def _write_snapshot_files(root: Path) -> None:
    row = {"prompt": "p", "chosen": "c", "rejected": "r"}
    for folder in ("trl", "trl_conversational", "meta"):
        (root / folder).mkdir(parents=True)
        for split in ("train", "validation", "test"):
            (root / folder / f"{split}.jsonl").write_text(json.dumps(row) + "\n")
    (root / "parquet").mkdir()
    for split in ("train", "validation", "test"):
        (root / "parquet" / f"{split}.parquet").write_bytes(b"PAR1")
    (root / "hf").mkdir()
    (root / "hf" / "dataset_info.json").write_text("{}")
    (root / "votes.jsonl").write_text(json.dumps({"task": 1}) + "\n")
    (root / "judgment_ids.txt").write_text("1\n")
    (root / "card.json").write_text("{}")


def build_world(artifact_dir: Path, *, text: str | None = None) -> World:
    users = {
        "annotator": make_user(Role.ANNOTATOR),
        "reviewer": make_user(Role.REVIEWER),
        "engineer": make_user(Role.ENGINEER),
        "admin": make_user(Role.ADMIN),
        "outsider": make_user(Role.ANNOTATOR),
    }
    project = make_project(
        members=[
            (users["annotator"], Role.ANNOTATOR),
            (users["reviewer"], Role.REVIEWER),
            (users["engineer"], Role.ENGINEER),
        ],
        overlap_k=2,
    )
    other = make_project(members=[(users["outsider"], Role.ANNOTATOR)])
    make_task(other)
    prompt = make_prompt(project, text)
    models = {"model_a": f"{text} model-a", "model_b": f"{text} model-b"} if text else {}
    task = make_task(project, prompt=prompt, a=text, b=(text + " (B)") if text else None, **models)
    # A disputed task (two judgments that disagree) for the review queue and adjudication.
    review_task = make_task(
        project, prompt=prompt, a=f"{text or 'review'} one", b=f"{text or 'review'} two", **models
    )
    review_task.status = TaskStatus.NEEDS_REVIEW
    review_task.save(update_fields=["status"])
    helper = make_user(Role.ANNOTATOR)
    add_member(project, helper)
    Judgment.objects.create(
        task=review_task, annotator=users["annotator"], choice=Choice.A, rationale=text or ""
    )
    Judgment.objects.create(task=review_task, annotator=helper, choice=Choice.B, rationale=text or "")
    make_candidate(prompt, f"{text or 'third'} candidate three")
    # An open task nobody has judged, so the annotator's ranking page has something to show.
    make_task(project, prompt=prompt, a=f"{text or 'open'} fresh A", b=f"{text or 'open'} fresh B", **models)
    judgment = Judgment.objects.create(
        task=task, annotator=users["annotator"], choice=Choice.A, rationale=text or "fine"
    )
    flag = AnnotatorFlag.objects.create(project=project, annotator=helper, reason="manual")
    root = artifact_dir / "snap"
    _write_snapshot_files(root)
    snapshot = DatasetSnapshot.objects.create(
        name="sec-snap",
        version=1,
        status=JobStatus.SUCCEEDED,
        artifact_dir=str(root),
        counts={"train": 1},
        completed_at=timezone.now(),
        spec={"projects": [project.pk]},
    )
    snapshot.projects.add(project)
    run = TrainingRun.objects.create(
        project=project,
        snapshot=snapshot,
        base_model="tiny",
        status=JobStatus.SUCCEEDED,
        total_steps=1,
        log_tail=text or "",
        status_reason=text or "",
    )
    RunMetric.objects.create(run=run, step=1, values={"loss": 0.5})
    policy_run = TrainingRun.objects.create(
        kind=RunKind.GRPO,
        project=project,
        base_model="tiny-lm",
        status=JobStatus.SUCCEEDED,
        total_steps=1,
        log_tail=text or "",
        # Live samples of the policy's own generations, as the executors store them.
        summary={
            "samples": [
                {"step": 1, "items": [{"prompt": text or "p", "response": text or "r", "reward": 0.1}]}
            ]
        },
    )
    reward_model = RewardModel.objects.create(
        project=project,
        version=1,
        run=run,
        snapshot=snapshot,
        base_model="tiny",
        artifact_dir=str(artifact_dir / "rm"),
        is_active=True,
    )
    # An evaluation on the snapshot's test split, so the promotion gate reads it instead of scoring.
    ModelEvaluation.objects.create(
        reward_model=reward_model, snapshot=snapshot, split="test", metrics={"accuracy": 0.9, "n": 10}
    )
    sample = ScoredSample.objects.create(
        reward_model=reward_model,
        prompt=text or "scored prompt",
        response=text or "scored response",
        reward=0.3,
    )
    # The policy run registered as the project's first (and active) policy version (no files: pages read
    # the row).
    policy_version = PolicyVersion.objects.create(
        project=project,
        version=1,
        run=policy_run,
        kind="grpo",
        artifact_dir=str(artifact_dir / "policy"),
        is_active=True,
    )
    # A reward-model sweep on the snapshot (a row only: no study, no trials).
    from training.models import RewardModelSweep

    sweep = RewardModelSweep.objects.create(
        project=project, snapshot=snapshot, base_model="minilm", study_name=f"security-{project.pk}"
    )
    annotator_token = make_token(users["annotator"], [TokenScope.ANNOTATE], name="annotator-own")
    return World(
        sweep_id=sweep.pk,
        annotator_token_id=ApiToken.objects.get(key_hash=ApiToken.hash_key(annotator_token)).pk,
        project=project,
        other_project=other,
        users=users,
        task=task,
        review_task=review_task,
        judgment=judgment,
        flag=flag,
        snapshot=snapshot,
        run=run,
        policy_run=policy_run,
        reward_model=reward_model,
        sample=sample,
        policy_version=policy_version,
    )


@pytest.fixture
def world(db, _artifact_dir) -> World:
    return build_world(_artifact_dir)


@pytest.fixture
def xss_world(db, _artifact_dir) -> World:
    """The same world whose prompt, candidates, rationales and scored samples are an HTML payload."""
    return build_world(_artifact_dir, text=XSS)
