"""Assignment rules: closest to completion first, leases hold slots and expire, gold rate, swapped repeats."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import ComparisonTask, TaskKind, TaskLease
from annotation.selectors.dashboard import annotator_dashboard
from annotation.services.assignment import task_next_for_annotator
from annotation.services.judgments import judgment_submit
from tests.factories import make_project, make_task, make_user

pytestmark = pytest.mark.django_db


def test_prefers_task_closest_to_completion():
    project = make_project(overlap_k=3, ask_strength=False)
    fresh, half = make_task(project), make_task(project)
    judgment_submit(task=half, annotator=make_user(), choice="A")
    assert task_next_for_annotator(project=project, annotator=make_user()) == half
    assert fresh.pk < half.pk


def test_leases_hold_slots_and_expire():
    project = make_project(overlap_k=1, lease_seconds=600)
    task = make_task(project)
    u1, u2 = make_user(), make_user()
    assert task_next_for_annotator(project=project, annotator=u1) == task
    assert task_next_for_annotator(project=project, annotator=u1) == task  # resume own lease
    assert task_next_for_annotator(project=project, annotator=u2) is None  # the only slot is leased
    later = timezone.now() + timedelta(seconds=601)
    assert task_next_for_annotator(project=project, annotator=u2, now=later) == task
    assert TaskLease.objects.filter(task=task, expires_at__gt=later).count() == 1  # only u2 holds it now


def test_judged_and_full_tasks_not_served():
    project = make_project(overlap_k=1, ask_strength=False)
    task = make_task(project)
    user = make_user()
    judgment_submit(task=task, annotator=user, choice="A")
    assert task_next_for_annotator(project=project, annotator=user) is None
    assert task_next_for_annotator(project=project, annotator=make_user()) is None


def test_gold_mixed_in_at_rate():
    project = make_project(gold_rate=0.0)
    make_task(project, kind=TaskKind.GOLD, gold_choice="A")
    standard = make_task(project)
    assert task_next_for_annotator(project=project, annotator=make_user()) == standard
    project.gold_rate = 1.0
    project.save()
    served = task_next_for_annotator(project=project, annotator=make_user())
    assert served.kind == TaskKind.GOLD


def test_swapped_repeat_created_later_and_measured():
    project = make_project(overlap_k=1, ask_strength=False, swap_repeat_rate=0.0)
    tasks = [make_task(project) for _ in range(6)]
    user = make_user()
    for _ in range(4):
        task = task_next_for_annotator(project=project, annotator=user)
        judgment_submit(task=task, annotator=user, choice="A")
    project.swap_repeat_rate = 1.0
    project.save()
    repeat = task_next_for_annotator(project=project, annotator=user)
    assert repeat.kind == TaskKind.REPEAT
    original = repeat.repeat_of
    assert original == tasks[0]  # only tasks older than the latest three are repeated
    assert (repeat.candidate_a_id, repeat.candidate_b_id) == (
        original.candidate_b_id,
        original.candidate_a_id,
    )
    judgment_submit(task=repeat, annotator=user, choice="B")  # consistent with A on the original
    original.refresh_from_db()
    assert original.judgment_count == 1  # the repeat does not count toward the original's k
    # Repeats are never served to someone else.
    assert task_next_for_annotator(project=project, annotator=make_user()).kind == TaskKind.STANDARD
    dash = annotator_dashboard(annotator=user)
    assert dash["repeats"] == {"checked": 1, "consistent": 1, "consistency": 1.0}
    assert ComparisonTask.objects.filter(kind=TaskKind.REPEAT).count() == 1
