"""Serving order by priority score (uncertainty first), the marked random share, the queue-order fallback, and
the index the priority order walks (PostgreSQL)."""

from __future__ import annotations

import random

import pytest
from django.db import connection

from annotation.models import ComparisonTask, Judgment, TaskLease
from annotation.services.assignment import task_next_for_annotator
from annotation.services.judgments import judgment_submit
from tests.factories import make_project, make_task, make_user

pytestmark = pytest.mark.django_db


def _serve_all(project, n):
    served = []
    for _ in range(n):
        user = make_user()
        task = task_next_for_annotator(project=project, annotator=user)
        if task is None:
            break
        served.append(task.pk)
        judgment_submit(task=task, annotator=user, choice="A")
    return served


def test_uncertainty_order_serves_highest_priority_first_then_unscored_in_queue_order(require_postgres):
    project = make_project(overlap_k=1, ask_strength=False, serving_order="uncertainty")
    unscored = make_task(project)
    low = make_task(project, priority_score=0.1)
    high = make_task(project, priority_score=0.9)
    mid = make_task(project, priority_score=0.5)
    assert _serve_all(project, 5) == [high.pk, mid.pk, low.pk, unscored.pk]


def test_queue_order_ignores_scores(require_postgres):
    project = make_project(overlap_k=1, ask_strength=False, serving_order="queue")
    first = make_task(project, priority_score=0.1)
    second = make_task(project, priority_score=0.9)
    assert _serve_all(project, 3) == [first.pk, second.pk]


def test_without_scores_uncertainty_falls_back_to_queue_order(require_postgres):
    project = make_project(overlap_k=3, ask_strength=False, serving_order="uncertainty")
    fresh, half = make_task(project), make_task(project)
    judgment_submit(task=half, annotator=make_user(), choice="A")
    assert task_next_for_annotator(project=project, annotator=make_user()) == half  # closest to completion
    assert fresh.pk < half.pk


def test_mix_random_share_is_marked_on_the_judgment_and_only_there(require_postgres):
    random.seed(7)
    project = make_project(overlap_k=1, ask_strength=False, serving_order="mix", random_share=0.5)
    tasks = [make_task(project, priority_score=i / 40) for i in range(40)]
    served = _serve_all(project, 40)
    assert sorted(served) == sorted(t.pk for t in tasks)
    marked = set(
        Judgment.objects.filter(task__project=project, served_random=True).values_list("task_id", flat=True)
    )
    assert 8 <= len(marked) <= 32  # about half of 40
    # The unmarked ones were served by priority: among them, each came before every lower-scored one.
    score = {t.pk: t.priority_score for t in tasks}
    by_priority = [pk for pk in served if pk not in marked]
    assert by_priority == sorted(by_priority, key=lambda pk: -score[pk])


def test_random_share_one_marks_every_judgment_and_share_zero_none(require_postgres):
    all_random = make_project(overlap_k=1, ask_strength=False, serving_order="mix", random_share=1.0)
    none_random = make_project(overlap_k=1, ask_strength=False, serving_order="mix", random_share=0.0)
    for project in (all_random, none_random):
        for i in range(5):
            make_task(project, priority_score=i / 5)
        _serve_all(project, 5)
    assert set(Judgment.objects.filter(task__project=all_random).values_list("served_random", flat=True)) == {
        True
    }
    assert set(
        Judgment.objects.filter(task__project=none_random).values_list("served_random", flat=True)
    ) == {False}


def test_random_lease_resumed_keeps_its_mark(require_postgres):
    project = make_project(overlap_k=1, ask_strength=False, serving_order="mix", random_share=1.0)
    make_task(project, priority_score=0.3)
    user = make_user()
    task = task_next_for_annotator(project=project, annotator=user)
    assert TaskLease.objects.get(task=task, annotator=user).served_random is True
    assert task_next_for_annotator(project=project, annotator=user) == task  # resume
    judgment_submit(task=task, annotator=user, choice="B")
    assert Judgment.objects.get(task=task).served_random is True


def test_priority_query_uses_the_partial_index(require_postgres):
    project = make_project(overlap_k=1, ask_strength=False, serving_order="uncertainty")
    for i in range(30):
        make_task(project, priority_score=i / 30)
    with connection.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute(
            "EXPLAIN SELECT id FROM annotation_comparisontask WHERE project_id = %s AND status = 'open' "
            "AND priority_score IS NOT NULL ORDER BY priority_score DESC, judgment_count DESC, id ASC LIMIT 2",
            [project.pk],
        )
        plan = "\n".join(row[0] for row in cur.fetchall())
        cur.execute("SET enable_seqscan = on")
    assert "task_priority_idx" in plan
    assert "Sort" not in plan  # walked in index order, not sorted per request


def test_annotator_payload_never_carries_the_prediction(require_postgres):
    from annotation.api.assignment import task_payload

    project = make_project(overlap_k=1, serving_order="uncertainty")
    task = make_task(project, priority_score=0.9, predicted_preference=0.55)
    payload = str(task_payload(ComparisonTask.objects.get(pk=task.pk)))
    assert "0.55" not in payload and "predicted" not in payload and "priority_score" not in payload
