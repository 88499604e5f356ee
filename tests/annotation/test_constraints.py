"""Database constraints hold whatever code writes: one judgment per (task, annotator), candidates of a
task belong to its prompt, no self-comparison."""

import pytest
from django.db import IntegrityError, transaction

from annotation.models import ComparisonTask, Judgment
from tests.factories import make_candidate, make_project, make_prompt, make_task, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def _commit(fn):
    """Run fn in its own transaction so deferred constraints are checked at commit."""
    with transaction.atomic():
        fn()


def test_second_judgment_by_same_annotator_is_rejected():
    project = make_project()
    task = make_task(project)
    user = make_user()
    Judgment.objects.create(task=task, annotator=user, choice="A", strength=2)
    with pytest.raises(IntegrityError):
        _commit(lambda: Judgment.objects.create(task=task, annotator=user, choice="B", strength=1))
    assert Judgment.objects.filter(task=task).count() == 1


def test_candidate_from_another_prompt_is_rejected():
    project = make_project()
    p1, p2 = make_prompt(project), make_prompt(project)
    a, b = make_candidate(p1), make_candidate(p2)
    with pytest.raises(IntegrityError):
        _commit(
            lambda: ComparisonTask.objects.create(project=project, prompt=p1, candidate_a=a, candidate_b=b)
        )
    assert not ComparisonTask.objects.exists()


def test_self_comparison_is_rejected():
    project = make_project()
    prompt = make_prompt(project)
    a = make_candidate(prompt)
    with pytest.raises(IntegrityError):
        _commit(
            lambda: ComparisonTask.objects.create(
                project=project, prompt=prompt, candidate_a=a, candidate_b=a
            )
        )


def test_strength_out_of_range_and_unknown_choice_are_rejected():
    task = make_task(make_project())
    with pytest.raises(IntegrityError):
        _commit(lambda: Judgment.objects.create(task=task, annotator=make_user(), choice="A", strength=4))
    with pytest.raises(IntegrityError):
        _commit(lambda: Judgment.objects.create(task=task, annotator=make_user(), choice="C"))


def test_same_idempotency_key_twice_for_one_annotator_is_rejected():
    project = make_project()
    t1, t2 = make_task(project), make_task(project)
    user = make_user()
    Judgment.objects.create(task=t1, annotator=user, choice="A", idempotency_key="k1")
    with pytest.raises(IntegrityError):
        _commit(lambda: Judgment.objects.create(task=t2, annotator=user, choice="B", idempotency_key="k1"))
