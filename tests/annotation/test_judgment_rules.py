"""Judgment rules: undo refused on gold tasks (API, UI, service), an idempotency key bound to one task
(409 for another), imported priors never taking a human overlap-k slot or entering dashboard agreement."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from annotation.models import (
    ComparisonTask,
    Judgment,
    JudgmentSource,
    TaskKind,
    TaskLease,
    TaskStatus,
)
from annotation.services.assignment import task_next_for_annotator
from annotation.services.imports import items_import
from annotation.services.judgments import judgment_submit, judgment_undo
from tests.factories import add_member, make_project, make_task, token_client

pytestmark = pytest.mark.django_db

API = "/api/v1"


# Undo on gold tasks ----------------------------------------------------------------------------------------


def test_gold_undo_refused_through_the_api(annotator):
    project = make_project(gold_rate=1.0, gold_feedback=True, ask_strength=False, undo_grace_seconds=60)
    add_member(project, annotator)
    gold = make_task(project, kind=TaskKind.GOLD, gold_choice="B", gold_explanation="B is factual")
    api = token_client(annotator)
    submitted = api.post(f"{API}/tasks/{gold.pk}/submit", {"choice": "A"}, format="json")
    assert submitted.status_code == 201
    assert submitted.json()["gold_feedback"]["correct"] is False
    judgment_id = submitted.json()["judgment"]

    res = api.post(f"{API}/judgments/{judgment_id}/undo")

    assert res.status_code == 400
    error = res.json()["error"]
    assert error["code"] == "invalid"
    assert "gold" in error["fields"]["judgment"][0]
    assert Judgment.objects.filter(pk=judgment_id, choice="A").exists()
    assert not TaskLease.objects.filter(task=gold, annotator=annotator).exists()


def test_gold_undo_refused_even_without_feedback(annotator):
    project = make_project(gold_feedback=False, ask_strength=False, undo_grace_seconds=60)
    gold = make_task(project, kind=TaskKind.GOLD, gold_choice="B")
    result = judgment_submit(task=gold, annotator=annotator, choice="A")
    with pytest.raises(ValidationError) as info:
        judgment_undo(judgment=result.judgment, annotator=annotator)
    assert "judgment" in info.value.message_dict
    # without feedback the annotator was never told it was gold; the refusal does not tell them either
    assert "gold" not in info.value.message_dict["judgment"][0]
    assert Judgment.objects.filter(pk=result.judgment.pk).exists()


def test_gold_undo_in_the_ui_shows_a_message(client, annotator):
    project = make_project(gold_rate=1.0, gold_feedback=True, ask_strength=False, undo_grace_seconds=60)
    add_member(project, annotator)
    gold = make_task(project, kind=TaskKind.GOLD, gold_choice="B")
    judgment = judgment_submit(task=gold, annotator=annotator, choice="A").judgment
    client.force_login(annotator)

    res = client.post(reverse("annotation:annotate-undo", args=[project.pk]), follow=True)

    assert res.status_code == 200
    assert "Nothing to undo" in res.content.decode()  # the page offers no undo after a gold answer
    assert Judgment.objects.filter(pk=judgment.pk).exists()


def test_standard_undo_still_works(annotator):
    project = make_project(overlap_k=1, ask_strength=False, undo_grace_seconds=60)
    task = make_task(project)
    result = judgment_submit(task=task, annotator=annotator, choice="A")
    judgment_undo(judgment=result.judgment, annotator=annotator)
    task.refresh_from_db()
    assert not Judgment.objects.filter(task=task).exists()
    assert (task.judgment_count, task.status) == (0, TaskStatus.OPEN)
    assert TaskLease.objects.filter(task=task, annotator=annotator).exists()


# Idempotency key reused on another task --------------------------------------------------------------------


def test_idempotency_key_reused_on_another_task_is_a_conflict(annotator):
    project = make_project(overlap_k=2, ask_strength=False)
    add_member(project, annotator)
    first, second = make_task(project), make_task(project)
    api = token_client(annotator)
    one = api.post(
        f"{API}/tasks/{first.pk}/submit", {"choice": "A"}, HTTP_IDEMPOTENCY_KEY="k-1", format="json"
    )
    assert one.status_code == 201

    res = api.post(
        f"{API}/tasks/{second.pk}/submit", {"choice": "B"}, HTTP_IDEMPOTENCY_KEY="k-1", format="json"
    )

    assert res.status_code == 409
    error = res.json()["error"]
    assert error["code"] == "conflict"
    assert "idempotency_key" in error["fields"]
    assert not Judgment.objects.filter(task=second).exists()
    second.refresh_from_db()
    assert second.judgment_count == 0
    # A true replay on the first task is still answered with the first judgment.
    again = api.post(
        f"{API}/tasks/{first.pk}/submit", {"choice": "A"}, HTTP_IDEMPOTENCY_KEY="k-1", format="json"
    )
    assert again.status_code == 200 and again.json()["judgment"] == one.json()["judgment"]
    # A fresh key on the second task is accepted.
    fresh = api.post(
        f"{API}/tasks/{second.pk}/submit", {"choice": "B"}, HTTP_IDEMPOTENCY_KEY="k-2", format="json"
    )
    assert fresh.status_code == 201


def test_idempotency_key_reuse_refused_by_the_service(annotator):
    project = make_project(overlap_k=2, ask_strength=False)
    first, second = make_task(project), make_task(project)
    judgment_submit(task=first, annotator=annotator, choice="A", idempotency_key="k-1")
    with pytest.raises(ValidationError) as info:
        judgment_submit(task=second, annotator=annotator, choice="B", idempotency_key="k-1")
    assert "idempotency_key" in info.value.message_dict
    assert not Judgment.objects.filter(task=second).exists()


# Imported priors do not take overlap-k slots ---------------------------------------------------------------

PRIOR_PAIRS = [
    {"prompt": "Is the sky blue?", "chosen": "Yes, on a clear day.", "rejected": "No."},
]


def _imported_task_with_prior(project) -> ComparisonTask:
    report = items_import(project=project, source=PRIOR_PAIRS, prior_judgments=True, seed=3)
    assert report.judgments_created == 1
    return ComparisonTask.objects.get(project=project)


@pytest.mark.parametrize("agrees", [True, False])
def test_prior_does_not_take_the_human_slot(annotator, agrees):
    project = make_project(overlap_k=1, ask_strength=False)
    add_member(project, annotator)
    task = _imported_task_with_prior(project)
    prior = Judgment.objects.get(task=task, source=JudgmentSource.PRIOR)
    choice = prior.choice if agrees else ("B" if prior.choice == "A" else "A")

    leased = task_next_for_annotator(project=project, annotator=annotator)
    assert leased is not None and leased.pk == task.pk
    result = judgment_submit(task=task, annotator=annotator, choice=choice)

    assert result.created and not result.judgment.is_extra
    task.refresh_from_db()
    assert (task.judgment_count, task.status) == (1, TaskStatus.COMPLETE)
    # The prior is kept as it was (exports and snapshots still see it).
    prior.refresh_from_db()
    assert (prior.source, prior.is_extra) == (JudgmentSource.PRIOR, False)


def test_prior_does_not_take_a_slot_through_the_api(annotator):
    project = make_project(overlap_k=1, ask_strength=False)
    add_member(project, annotator)
    task = _imported_task_with_prior(project)
    api = token_client(annotator)
    served = api.post(f"{API}/projects/{project.pk}/tasks/next").json()["task"]
    assert served["id"] == task.pk

    res = api.post(f"{API}/tasks/{task.pk}/submit", {"choice": "A"}, format="json")

    assert res.status_code == 201 and res.json()["is_extra"] is False
    task.refresh_from_db()
    assert (task.judgment_count, task.status) == (1, TaskStatus.COMPLETE)


# Follow-ups: the judgments endpoint, the undo offer, the dashboard ----------------------------------------


def test_judgments_endpoint_answers_409_for_a_key_of_another_task(annotator):
    project = make_project(overlap_k=2, ask_strength=False)
    add_member(project, annotator)
    first, second = make_task(project), make_task(project)
    api = token_client(annotator)
    body = {"task": first.pk, "choice": "A", "idempotency_key": "j-1"}
    assert api.post(f"{API}/judgments/", body, format="json").status_code == 201
    res = api.post(f"{API}/judgments/", {**body, "task": second.pk}, format="json")
    assert res.status_code == 409
    assert res.json()["error"]["code"] == "conflict" and "idempotency_key" in res.json()["error"]["fields"]
    assert not Judgment.objects.filter(task=second).exists()


def test_no_undo_is_offered_after_a_gold_answer(annotator):
    from annotation.selectors.assignment import last_undoable_judgment

    project = make_project(gold_feedback=True, ask_strength=False, undo_grace_seconds=60)
    standard, gold = make_task(project), make_task(project, kind=TaskKind.GOLD, gold_choice="B")
    judgment_submit(task=standard, annotator=annotator, choice="A")
    assert last_undoable_judgment(project=project, annotator=annotator) is not None
    judgment_submit(task=gold, annotator=annotator, choice="A")
    # the last submission is the gold answer: nothing to undo (not the standard one before it)
    assert last_undoable_judgment(project=project, annotator=annotator) is None


def test_dashboard_agreement_ignores_imported_priors(annotator):
    from annotation.selectors.dashboard import annotator_dashboard

    project = make_project(overlap_k=1, ask_strength=False)
    add_member(project, annotator)
    task = _imported_task_with_prior(project)
    prior = Judgment.objects.get(task=task, source=JudgmentSource.PRIOR)
    judgment_submit(task=task, annotator=annotator, choice="B" if prior.choice == "A" else "A")
    stats = annotator_dashboard(annotator=annotator, projects=[project])
    # no other annotator judged the task: there is no consensus to agree or disagree with
    assert stats["consensus"]["compared"] == 0
