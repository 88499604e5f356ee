"""30 annotators, each on its own PostgreSQL connection, drain a queue concurrently with retried submits.

Afterwards every task holds exactly k counted judgments, nobody judged a task twice, and every submit that
returned is in the database (none lost).
"""

from __future__ import annotations

import random
import threading
import time
import uuid

import pytest
from django.db import OperationalError, connection

from annotation.models import ComparisonTask, Judgment, TaskLease
from annotation.services.assignment import task_next_for_annotator
from annotation.services.judgments import judgment_submit
from tests.factories import add_member, make_project, make_tasks, make_user

ANNOTATORS = 30
TASKS = 60
K = 3


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_thirty_annotators_fill_every_task_exactly_k(require_postgres):
    project = make_project(overlap_k=K, ask_strength=False, lease_seconds=600)
    tasks = make_tasks(project, TASKS, seed=1)
    users = [make_user(username=f"conc-{i}") for i in range(ANNOTATORS)]
    for user in users:
        add_member(project, user)

    submitted: dict[str, int] = {}  # idempotency key -> judgment id the service returned
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(ANNOTATORS)

    def work(user, seed: int) -> None:
        rng = random.Random(seed)
        try:
            barrier.wait()
            while True:
                task = task_next_for_annotator(project=project, annotator=user)
                if task is None:
                    break
                key = uuid.uuid4().hex
                choice = rng.choice(["A", "B", "tie"])
                for _attempt in range(rng.choice([1, 1, 2, 3])):  # random client retries of one submit
                    for _db_retry in range(5):
                        try:
                            result = judgment_submit(
                                task=task, annotator=user, choice=choice, idempotency_key=key
                            )
                            break
                        except OperationalError:  # deadlock/serialisation: retry like a client would
                            continue
                    with lock:
                        assert submitted.setdefault(key, result.judgment.pk) == result.judgment.pk
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u, i)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors

    judgments = list(Judgment.objects.filter(task__project=project).values("pk", "task_id", "annotator_id"))
    assert len(judgments) == TASKS * K
    assert {j["pk"] for j in judgments} == set(submitted.values())  # none lost, none invented
    assert len({(j["task_id"], j["annotator_id"]) for j in judgments}) == len(judgments)  # no duplicates
    assert not Judgment.objects.filter(task__project=project, is_extra=True).exists()
    for task in ComparisonTask.objects.filter(pk__in=[t.pk for t in tasks]):
        assert task.judgment_count == K
        assert Judgment.objects.filter(task=task).count() == K
        assert task.status in ("complete", "needs_review")
    assert not TaskLease.objects.filter(task__project=project).exists()


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_late_submits_after_lease_expiry_are_kept(require_postgres):
    """Leases of 1 s; a share of annotators is slow and submits after their lease expired. Every submit is
    kept (counted while a slot is free, else marked extra) and every task still ends with exactly k counted."""
    project = make_project(overlap_k=2, ask_strength=False, lease_seconds=1)
    tasks = make_tasks(project, 30, seed=2)
    users = [make_user(username=f"late-{i}") for i in range(20)]
    submitted: set[int] = set()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(user, seed: int) -> None:
        rng = random.Random(seed)
        try:
            while True:
                task = task_next_for_annotator(project=project, annotator=user)
                if task is None:
                    break
                if rng.random() < 0.25:
                    time.sleep(1.2)  # the lease runs out while this annotator is still reading
                result = judgment_submit(task=task, annotator=user, choice=rng.choice(["A", "B"]))
                with lock:
                    submitted.add(result.judgment.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u, i)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    stored = set(Judgment.objects.filter(task__project=project).values_list("pk", flat=True))
    assert stored == submitted  # none lost
    for task in ComparisonTask.objects.filter(pk__in=[t.pk for t in tasks]):
        counted = Judgment.objects.filter(task=task, is_extra=False).count()
        assert counted == task.judgment_count == 2
