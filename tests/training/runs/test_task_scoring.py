"""Task scoring job: the active reward model scores open tasks in batches with the training encoding, writes
P(A better) and the uncertainty, reports progress, stops when cancelled, and is queued after a promotion."""

from __future__ import annotations

import math

import pytest
from django.core.exceptions import ValidationError
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from annotation.models import ComparisonTask, TaskStatus
from tests.factories import make_project, make_task, make_user
from training.models import RewardModel, TaskScoringJob, TaskScoringStatus
from training.rewardmodels.registry import PromotionGate, reward_model_promote
from training.rewardmodels.task_scoring import task_scoring_cancel, task_scoring_run, task_scoring_start
from training.rm_encoding import score_split

pytestmark = pytest.mark.django_db


def _rm(project, artifact_dir, *, active=True, version=1):
    return RewardModel.objects.create(
        project=project,
        version=version,
        base_model="tiny",
        artifact_dir=str(artifact_dir),
        max_length=64,
        is_active=active,
    )


def test_scores_open_tasks_with_the_training_encoding(tiny_reward_model_dir):
    project = make_project(serving_order="uncertainty")
    rm = _rm(project, tiny_reward_model_dir)
    tasks = [make_task(project, a=f"Paris is the capital {i}.", b=f"I cannot help {i}.") for i in range(5)]
    done = make_task(project, status=TaskStatus.COMPLETE)
    job = task_scoring_start(project=project, enqueue=False)
    job = task_scoring_run(job_id=job.pk, batch_size=2)
    assert (job.status, job.total, job.scored) == (TaskScoringStatus.SUCCEEDED, 5, 5)
    assert ComparisonTask.objects.get(pk=done.pk).priority_score is None  # closed tasks are not scored
    # Same numbers as scoring the pairs directly through training's score_split.
    tokenizer = AutoTokenizer.from_pretrained(rm.artifact_dir)
    model = AutoModelForSequenceClassification.from_pretrained(rm.artifact_dir)
    rows = [
        {"prompt": t.prompt.text, "chosen": t.candidate_a.text, "rejected": t.candidate_b.text} for t in tasks
    ]
    r_a, r_b, *_ = score_split(model, tokenizer, rows, [{} for _ in rows], max_length=64)
    for task, ra, rb in zip(tasks, r_a, r_b, strict=True):
        task.refresh_from_db()
        p = 1 / (1 + math.exp(-(ra - rb)))
        assert task.predicted_preference == pytest.approx(p, abs=1e-5)
        assert task.priority_score == pytest.approx(1 - 2 * abs(p - 0.5), abs=1e-5)


def test_cancel_stops_between_batches_and_keeps_what_was_written():
    project = make_project()
    _rm(project, "/nonexistent")
    for _ in range(6):
        make_task(project)
    job = task_scoring_start(project=project, enqueue=False)
    calls = []

    def scorer(rows, meta):
        calls.append(len(rows))
        task_scoring_cancel(job=job)  # the operator cancels while the first batch is scored
        return [1.0] * len(rows), [0.0] * len(rows), rows, meta, {}

    job = task_scoring_run(job_id=job.pk, batch_size=2, scorer=scorer)
    assert job.status == TaskScoringStatus.CANCELLED and calls == [2]
    stored = TaskScoringJob.objects.get(pk=job.pk)
    assert (stored.status, stored.scored, stored.total) == (TaskScoringStatus.CANCELLED, 2, 6)
    assert ComparisonTask.objects.filter(project=project, priority_score__isnull=False).count() == 2


def test_no_active_model_is_refused_and_the_api_says_so(client):
    project = make_project()
    with pytest.raises(ValidationError, match="no active reward model"):
        task_scoring_start(project=project, enqueue=False)
    from annotation.models import ProjectMembership, Role

    engineer = make_user(Role.ENGINEER)
    ProjectMembership.objects.create(project=project, user=engineer, role=Role.ENGINEER)
    client.force_login(engineer)
    r = client.post(f"/api/v1/projects/{project.pk}/task-scoring/")
    assert r.status_code == 400 and "no active reward model" in r.content.decode()


def test_promotion_queues_a_scoring_job_unless_queue_order(django_capture_on_commit_callbacks):
    queued = make_project(serving_order="queue")
    scored = make_project(serving_order="mix")
    for project in (queued, scored):
        rm = _rm(project, "/nonexistent", active=False)
        reward_model_promote(reward_model=rm, gate=PromotionGate(min_accuracy=0.0), force=True, reason="test")
    assert not TaskScoringJob.objects.filter(project=queued).exists()
    job = TaskScoringJob.objects.get(project=scored)
    assert job.status == TaskScoringStatus.QUEUED and job.reward_model.is_active


def test_live_agreement_on_votes_after_the_snapshot_with_wilson_interval_and_random_share():
    from annotation.services.judgments import judgment_submit
    from training.rewardmodels.selectors import reward_model_live_agreement

    project = make_project(overlap_k=1, ask_strength=False)
    rm = _rm(project, "/nonexistent")
    assert reward_model_live_agreement(rm)["all"]["n"] == 0  # not scored by this model yet
    tasks = [make_task(project, predicted_preference=p) for p in (0.9, 0.8, 0.3, 0.7, 0.6)]
    TaskScoringJob.objects.create(project=project, reward_model=rm, status=TaskScoringStatus.SUCCEEDED)
    for task, choice in zip(tasks, ["A", "A", "B", "B", "tie"], strict=True):  # agree, agree, agree, disagree
        judgment_submit(task=task, annotator=make_user(), choice=choice)
    from annotation.models import Judgment

    Judgment.objects.filter(task=tasks[3]).update(served_random=True)
    out = reward_model_live_agreement(rm)
    assert out["scored"] and out["all"]["n"] == 4 and out["all"]["accuracy"] == 0.75
    # Wilson 95% for 3/4 by hand: centre (0.75 + 0.4802) / 1.9604 = 0.6275, half 0.3269 -> [0.3006, 0.9544].
    assert out["all"]["low"] == pytest.approx(0.3006, abs=1e-3)
    assert out["all"]["high"] == pytest.approx(0.9544, abs=1e-3)
    assert out["random_share"] == {
        "n": 1,
        "accuracy": 0.0,
        "low": 0.0,
        "high": pytest.approx(0.7935, abs=1e-3),
    }


def test_live_agreement_api(client):
    from annotation.models import ProjectMembership, Role

    project = make_project()
    rm = _rm(project, "/nonexistent")
    engineer = make_user(Role.ENGINEER)
    ProjectMembership.objects.create(project=project, user=engineer, role=Role.ENGINEER)
    client.force_login(engineer)
    r = client.get(f"/api/v1/reward-models/{rm.pk}/live-agreement/")
    assert r.status_code == 200 and r.json()["all"] == {"n": 0, "accuracy": None, "low": None, "high": None}
