"""judgment_submit / undo / skip / ranking / adjudication against the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from annotation.models import (
    Adjudication,
    Candidate,
    ComparisonTask,
    Judgment,
    JudgmentSource,
    Role,
    TaskKind,
    TaskLease,
    TaskSkip,
    TaskStatus,
)
from annotation.services.assignment import task_next_for_annotator
from annotation.services.judgments import (
    adjudication_create,
    judgment_submit,
    judgment_undo,
    ranking_submit,
    task_skip,
)
from tests.factories import make_candidate, make_project, make_prompt, make_task, make_user

pytestmark = pytest.mark.django_db


def test_submit_counts_and_completes(project, annotator):
    task = make_task(project)
    other = make_user(Role.ANNOTATOR)
    r1 = judgment_submit(task=task, annotator=annotator, choice="A", strength=2, idempotency_key="k1")
    assert r1.created and not r1.judgment.is_extra
    task.refresh_from_db()
    assert (task.judgment_count, task.status) == (1, TaskStatus.OPEN)
    judgment_submit(task=task, annotator=other, choice="A", strength=1)
    task.refresh_from_db()
    assert (task.judgment_count, task.status) == (2, TaskStatus.COMPLETE)


def test_disagreement_goes_to_review_and_adjudication(project, annotator):
    task = make_task(project)
    judgment_submit(task=task, annotator=annotator, choice="A", strength=2)
    judgment_submit(task=task, annotator=make_user(), choice="B", strength=2)
    task.refresh_from_db()
    assert task.status == TaskStatus.NEEDS_REVIEW
    reviewer = make_user(Role.REVIEWER)
    adj = adjudication_create(task=task, reviewer=reviewer, choice="B", strength=3, note="B is right")
    task.refresh_from_db()
    assert task.status == TaskStatus.ADJUDICATED
    assert Adjudication.objects.get(task=task).pk == adj.pk
    with pytest.raises(ValidationError):
        adjudication_create(task=task, reviewer=reviewer, choice="A", strength=1)


def test_idempotent_submit_returns_first(project, annotator):
    task = make_task(project)
    r1 = judgment_submit(task=task, annotator=annotator, choice="A", strength=2, idempotency_key="abc")
    r2 = judgment_submit(task=task, annotator=annotator, choice="B", strength=1, idempotency_key="abc")
    assert not r2.created and r2.judgment.pk == r1.judgment.pk and r2.judgment.choice == "A"
    with pytest.raises(ValidationError) as err:
        judgment_submit(task=task, annotator=annotator, choice="B", strength=1, idempotency_key="other")
    assert "task" in err.value.message_dict
    assert Judgment.objects.filter(task=task).count() == 1


def test_validation_follows_project_settings(annotator):
    project = make_project(
        allow_tie=False,
        allow_both_bad=False,
        ask_strength=True,
        rationale_required=True,
        extra_criteria=["helpful"],
    )
    task = make_task(project)
    for kwargs, field in [
        ({"choice": "tie", "rationale": "x"}, "choice"),
        ({"choice": "both_bad", "rationale": "x"}, "choice"),
        ({"choice": "A", "rationale": "x"}, "strength"),
        ({"choice": "A", "strength": 2}, "rationale"),
        ({"choice": "A", "strength": 2, "rationale": "x", "criteria": {"nope": "A"}}, "criteria"),
        ({"choice": "Z", "rationale": "x"}, "choice"),
    ]:
        with pytest.raises(ValidationError) as err:
            judgment_submit(task=task, annotator=annotator, **kwargs)
        assert field in err.value.message_dict, kwargs
    res = judgment_submit(
        task=task, annotator=annotator, choice="B", strength=3, rationale="clearer", criteria={"helpful": "B"}
    )
    assert res.judgment.criteria == {"helpful": "B"} and res.judgment.strength == 3


def test_late_submit_after_expired_lease_is_kept_as_extra(annotator):
    project = make_project(overlap_k=1)
    task = make_task(project)
    past = timezone.now() - timedelta(hours=1)
    assert task_next_for_annotator(project=project, annotator=annotator, now=past) == task
    # The lease expired; someone else takes the slot and submits.
    other = make_user()
    assert task_next_for_annotator(project=project, annotator=other) == task
    judgment_submit(task=task, annotator=other, choice="A", strength=1)
    late = judgment_submit(task=task, annotator=annotator, choice="B", strength=1)
    assert late.created and late.judgment.is_extra
    task.refresh_from_db()
    assert task.judgment_count == 1 and task.status == TaskStatus.COMPLETE
    assert Judgment.objects.filter(task=task).count() == 2


def test_late_submit_counts_when_slot_still_free(annotator):
    project = make_project(overlap_k=1)
    task = make_task(project)
    task_next_for_annotator(project=project, annotator=annotator, now=timezone.now() - timedelta(hours=1))
    res = judgment_submit(task=task, annotator=annotator, choice="A", strength=1)
    assert not res.judgment.is_extra
    assert not TaskLease.objects.filter(task=task).exists()


def test_undo_within_grace_and_releases_slot(project, annotator):
    task = make_task(project)
    res = judgment_submit(task=task, annotator=annotator, choice="A", strength=2)
    judgment_undo(judgment=res.judgment, annotator=annotator)
    task.refresh_from_db()
    assert task.judgment_count == 0 and not Judgment.objects.filter(task=task).exists()
    # The task comes back to the same annotator.
    assert task_next_for_annotator(project=project, annotator=annotator) == task


def test_undo_refused_after_grace_or_for_others(project, annotator):
    task = make_task(project)
    res = judgment_submit(task=task, annotator=annotator, choice="A", strength=2)
    with pytest.raises(ValidationError):
        judgment_undo(judgment=res.judgment, annotator=make_user())
    Judgment.objects.filter(pk=res.judgment.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    res.judgment.refresh_from_db()
    with pytest.raises(ValidationError):
        judgment_undo(judgment=res.judgment, annotator=annotator)
    assert Judgment.objects.filter(pk=res.judgment.pk).exists()


def test_undo_promotes_extra_judgment():
    project = make_project(overlap_k=1)
    task = make_task(project)
    first, second = make_user(), make_user()
    r1 = judgment_submit(task=task, annotator=first, choice="A", strength=1)
    r2 = judgment_submit(task=task, annotator=second, choice="B", strength=1)
    assert r2.judgment.is_extra
    judgment_undo(judgment=r1.judgment, annotator=first)
    r2.judgment.refresh_from_db()
    task.refresh_from_db()
    assert not r2.judgment.is_extra and task.judgment_count == 1


def test_skip_hides_task_from_annotator(project, annotator):
    t1 = make_task(project)
    t2 = make_task(project)
    assert task_next_for_annotator(project=project, annotator=annotator) == t1
    skip = task_skip(task=t1, annotator=annotator, reason="unreadable")
    assert TaskSkip.objects.get(pk=skip.pk).reason == "unreadable"
    assert not TaskLease.objects.filter(task=t1, annotator=annotator).exists()
    assert task_next_for_annotator(project=project, annotator=annotator) == t2


def test_gold_feedback(annotator):
    project = make_project(gold_feedback=True)
    gold = make_task(project, kind=TaskKind.GOLD, gold_choice="B", gold_explanation="B cites sources")
    res = judgment_submit(task=gold, annotator=annotator, choice="A", strength=1)
    assert res.gold_feedback == {
        "correct": False,
        "your_choice": "A",
        "gold_choice": "B",
        "explanation": "B cites sources",
    }
    quiet = make_project(gold_feedback=False)
    gold2 = make_task(quiet, kind=TaskKind.GOLD, gold_choice="B")
    assert judgment_submit(task=gold2, annotator=annotator, choice="B", strength=1).gold_feedback is None


def test_ranking_expands_to_pairwise(annotator):
    project = make_project(overlap_k=1)
    prompt = make_prompt(project)
    c1, c2, c3 = (make_candidate(prompt, f"cand {i}") for i in range(3))
    existing = ComparisonTask.objects.create(project=project, prompt=prompt, candidate_a=c3, candidate_b=c1)
    ranking = ranking_submit(prompt=prompt, annotator=annotator, order=[c2.pk, c1.pk, c3.pk])
    judgments = Judgment.objects.filter(ranking=ranking).select_related("task")
    assert judgments.count() == 3
    assert all(j.source == JudgmentSource.RANKING for j in judgments)
    for j in judgments:
        winner = j.task.candidate_a_id if j.choice == "A" else j.task.candidate_b_id
        loser = j.task.candidate_b_id if j.choice == "A" else j.task.candidate_a_id
        order = [c2.pk, c1.pk, c3.pk]
        assert order.index(winner) < order.index(loser)
    # The existing (c3, c1) task was reused: c1 ranks above c3, so B wins there.
    assert Judgment.objects.get(task=existing, annotator=annotator).choice == "B"
    assert ComparisonTask.objects.filter(prompt=prompt).count() == 3
    with pytest.raises(ValidationError):
        ranking_submit(prompt=prompt, annotator=annotator, order=[c1.pk, c1.pk])
    other_prompt = make_prompt(project)
    with pytest.raises(ValidationError):
        ranking_submit(prompt=other_prompt, annotator=annotator, order=[c1.pk, c2.pk])
    assert Candidate.objects.count() == 3
