"""Changing a project's overlap k re-decides its tasks' status; annotators cannot pick out gold tasks."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.models import (
    Judgment,
    JudgmentSource,
    Project,
    Role,
    TaskKind,
    TaskStatus,
)
from annotation.selectors.assignment import review_queue
from annotation.services.assignment import task_next_for_annotator
from annotation.services.judgments import _refresh_task_state, adjudication_create, judgment_submit
from annotation.services.projects import project_update
from tests.factories import add_member, make_project, make_task, make_user

pytestmark = pytest.mark.django_db

API = "/api/v1"


def _annotators(project, n: int) -> list:
    users = [make_user(Role.ANNOTATOR) for _ in range(n)]
    for user in users:
        add_member(project, user)
    return users


def _in_review_queue(project, task) -> bool:
    return review_queue(projects=Project.objects.filter(pk=project.pk)).filter(pk=task.pk).exists()


# --- overlap k changes -------------------------------------------------------------------------------


def test_raising_k_reopens_complete_tasks_and_serves_them_again():
    project = make_project(overlap_k=1, gold_rate=0, swap_repeat_rate=0, ask_strength=False)
    first, second = _annotators(project, 2)
    task = make_task(project)
    judgment_submit(task=task, annotator=first, choice="A")
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETE
    assert task_next_for_annotator(project=project, annotator=second) is None

    project_update(project=project, overlap_k=2)

    task.refresh_from_db()
    assert (task.status, task.judgment_count) == (TaskStatus.OPEN, 1)
    served = task_next_for_annotator(project=project, annotator=second)
    assert served is not None and served.pk == task.pk
    judgment_submit(task=task, annotator=second, choice="A")
    task.refresh_from_db()
    assert (task.status, task.judgment_count) == (TaskStatus.COMPLETE, 2)


def test_lowering_k_sends_disagreeing_open_task_to_review():
    project = make_project(overlap_k=3, gold_rate=0, swap_repeat_rate=0, ask_strength=False)
    first, second = _annotators(project, 2)
    task = make_task(project)
    judgment_submit(task=task, annotator=first, choice="A")
    judgment_submit(task=task, annotator=second, choice="B")
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN and not _in_review_queue(project, task)

    project_update(project=project, overlap_k=2)

    task.refresh_from_db()
    assert task.status == TaskStatus.NEEDS_REVIEW
    assert _in_review_queue(project, task)


def test_lowering_k_completes_agreeing_open_task():
    project = make_project(overlap_k=3, gold_rate=0, swap_repeat_rate=0, ask_strength=False)
    first, second, third = _annotators(project, 3)
    task = make_task(project)
    judgment_submit(task=task, annotator=first, choice="B")
    judgment_submit(task=task, annotator=second, choice="B")

    project_update(project=project, overlap_k=2)

    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETE
    assert not _in_review_queue(project, task)
    assert task_next_for_annotator(project=project, annotator=third) is None


def test_k_change_leaves_gold_repeat_and_adjudicated_tasks_alone():
    project = make_project(overlap_k=1, gold_rate=0, swap_repeat_rate=0, ask_strength=False)
    first, second = _annotators(project, 2)
    reviewer = make_user(Role.REVIEWER)
    gold = make_task(project, kind=TaskKind.GOLD, gold_choice="A")
    original = make_task(project)
    repeat = make_task(project, kind=TaskKind.REPEAT, repeat_of=original)
    adjudicated = make_task(project)
    for task in (gold, repeat):
        judgment_submit(task=task, annotator=first, choice="A")
    judgment_submit(task=gold, annotator=second, choice="B")
    judgment_submit(task=adjudicated, annotator=first, choice="A")
    adjudication_create(task=adjudicated, reviewer=reviewer, choice="A")
    for t in (gold, repeat, adjudicated):
        t.refresh_from_db()
    before = {t.pk: (t.status, t.judgment_count) for t in (gold, repeat, adjudicated)}
    assert before[repeat.pk] == (TaskStatus.COMPLETE, 1)

    project_update(project=project, overlap_k=3)

    for t in (gold, repeat, adjudicated):
        t.refresh_from_db()
    assert {t.pk: (t.status, t.judgment_count) for t in (gold, repeat, adjudicated)} == before
    assert adjudicated.status == TaskStatus.ADJUDICATED


def test_raising_k_lets_late_extra_answers_take_the_new_slots():
    project = make_project(overlap_k=1, gold_rate=0, swap_repeat_rate=0, ask_strength=False)
    first, late, third = _annotators(project, 3)
    task = make_task(project)
    judgment_submit(task=task, annotator=first, choice="A")
    extra = Judgment.objects.create(task=task, annotator=late, choice="B", is_extra=True)

    project_update(project=project, overlap_k=3)

    extra.refresh_from_db()
    task.refresh_from_db()
    assert not extra.is_extra
    assert (task.status, task.judgment_count) == (TaskStatus.OPEN, 2)
    served = task_next_for_annotator(project=project, annotator=third)
    assert served is not None and served.pk == task.pk


def test_k_change_agrees_with_the_submit_rule_for_every_task():
    """After a k change, re-running the submit path's own state rule on each task changes nothing."""
    project = make_project(overlap_k=2, gold_rate=0, swap_repeat_rate=0, ask_strength=False)
    users = _annotators(project, 3)
    votes = [[], ["A"], ["A", "A"], ["A", "B"], ["A", "tie"], ["B", "B", "B"]]
    tasks = []
    for choices in votes:
        task = make_task(project)
        for user, choice in zip(users, choices, strict=False):
            Judgment.objects.create(task=task, annotator=user, choice=choice)
        _refresh_task_state(task)
        tasks.append(task)
    prior = make_task(project)
    Judgment.objects.create(task=prior, annotator=users[0], choice="A", source=JudgmentSource.PRIOR)
    tasks.append(prior)

    for k in (1, 3, 2, 1):
        project_update(project=project, overlap_k=k)
        recomputed = {}
        for task in tasks:
            task.refresh_from_db()
            stored = (task.status, task.judgment_count)
            _refresh_task_state(task)
            recomputed[task.pk] = (stored, (task.status, task.judgment_count))
        assert all(a == b for a, b in recomputed.values()), (k, recomputed)


def test_update_without_k_change_does_not_touch_tasks():
    project = make_project(overlap_k=2, gold_rate=0, swap_repeat_rate=0, ask_strength=False)
    (first,) = _annotators(project, 1)
    task = make_task(project)
    judgment_submit(task=task, annotator=first, choice="A")
    project_update(project=project, overlap_k=2, description="same k")
    task.refresh_from_db()
    assert (task.status, task.judgment_count) == (TaskStatus.OPEN, 1)


# --- gold privacy in the tasks API ---------------------------------------------------------------------

HIDDEN = {"status", "judgment_count", "kind", "gold_choice", "gold_explanation", "repeat_of", "metadata"}


@pytest.fixture
def gold_world(require_postgres):
    project = make_project(overlap_k=1, gold_rate=0, swap_repeat_rate=0, ask_strength=False)
    annotator, other, third = _annotators(project, 3)
    reviewer = make_user(Role.REVIEWER)
    add_member(project, reviewer, Role.REVIEWER)
    standard = make_task(project)
    gold = make_task(project, kind=TaskKind.GOLD, gold_choice="A")
    judgment_submit(task=gold, annotator=other, choice="A")
    judgment_submit(task=gold, annotator=third, choice="B")
    judgment_submit(task=standard, annotator=other, choice="A")
    gold.refresh_from_db()
    standard.refresh_from_db()
    # The tell the API used to give away: gold open past k, standard complete at k.
    assert (gold.status, gold.judgment_count) == (TaskStatus.OPEN, 2)
    assert (standard.status, standard.judgment_count) == (TaskStatus.COMPLETE, 1)
    return project, annotator, reviewer, standard, gold


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _comparable(task_json: dict) -> dict:
    """What is left once the task's own content (ids, texts, creation time) is set aside."""
    return {
        k: v
        for k, v in task_json.items()
        if k not in {"id", "prompt", "candidate_a", "candidate_b", "created_at"}
    }


def test_annotator_cannot_tell_gold_from_standard_tasks(gold_world):
    project, annotator, _, standard, gold = gold_world
    client = _client(annotator)
    listed = client.get(f"{API}/tasks/", {"project": project.pk}).json()["results"]
    by_id = {t["id"]: t for t in listed}
    assert set(by_id) == {standard.pk, gold.pk}
    details = {pk: client.get(f"{API}/tasks/{pk}/").json() for pk in (standard.pk, gold.pk)}
    for shown in (by_id, details):
        assert set(shown[gold.pk]) == set(shown[standard.pk])
        assert not HIDDEN & set(shown[gold.pk])
        assert _comparable(shown[gold.pk]) == _comparable(shown[standard.pk])
        assert set(shown[gold.pk]["candidate_a"]) == set(shown[standard.pk]["candidate_a"]) == {"id", "text"}
    # Nor can a status filter separate them (gold stays open, the judged standard task does not).
    for status in ("open", "complete"):
        assert client.get(f"{API}/tasks/", {"project": project.pk, "status": status}).json()["results"] == []


def test_reviewer_still_sees_status_counts_and_kind(gold_world):
    project, _, reviewer, standard, gold = gold_world
    client = _client(reviewer)
    shown = client.get(f"{API}/tasks/{gold.pk}/").json()
    assert (shown["status"], shown["judgment_count"], shown["kind"]) == ("open", 2, "gold")
    assert shown["gold_choice"] == "A"
    listed = client.get(f"{API}/tasks/", {"project": project.pk, "status": "complete"}).json()["results"]
    assert [(t["id"], t["judgment_count"], t["kind"]) for t in listed] == [(standard.pk, 1, "standard")]
