"""Judgment services: submit (idempotent, slot-safe), undo, skip, K-way rankings and reviewer adjudication.

Every business action is one transaction that locks the task row (``SELECT ... FOR UPDATE``) before it
counts slots, so ``judgment_count`` never passes the project's overlap k, whatever the interleaving.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from annotation.models import (
    COUNTED_JUDGMENTS,
    Adjudication,
    Choice,
    ComparisonTask,
    Judgment,
    JudgmentSource,
    ModelPairing,
    Prompt,
    Ranking,
    ServingOrder,
    TaskKind,
    TaskLease,
    TaskSkip,
    TaskStatus,
)

STRENGTH_CHOICES = {1: "slightly", 2: "clearly", 3: "much"}
CRITERION_CHOICES = {Choice.A.value, Choice.B.value, Choice.TIE.value}


@dataclass
class SubmitResult:
    """What a submit did. ``gold_feedback`` is set when the task is gold and the project shows feedback."""

    judgment: Judgment
    created: bool
    gold_feedback: dict | None = None


def task_required_judgments(task: ComparisonTask) -> int | None:
    """Counted judgments a task needs: overlap k; 1 for a swapped repeat; None (unbounded) for gold items,
    which every annotator may answer once."""
    if task.kind == TaskKind.GOLD:
        return None
    if task.kind == TaskKind.REPEAT:
        return 1
    return task.project.overlap_k


def _validate_answer(*, project, choice, strength, rationale, criteria) -> tuple[int | None, dict]:
    errors: dict[str, list[str]] = {}
    valid = {c.value for c in Choice}
    if choice not in valid:
        errors["choice"] = [f"Must be one of {sorted(valid)}."]
    elif choice == Choice.TIE and not project.allow_tie:
        errors["choice"] = ["This project does not allow ties."]
    elif choice == Choice.BOTH_BAD and not project.allow_both_bad:
        errors["choice"] = ["This project does not allow 'both bad'."]
    if strength in ("", None):
        strength = None
    else:
        try:
            strength = int(strength)
        except (TypeError, ValueError):
            strength = -1
        if strength not in STRENGTH_CHOICES:
            errors["strength"] = ["Must be 1 (slightly), 2 (clearly) or 3 (much better)."]
    if choice in (Choice.A, Choice.B):
        if project.ask_strength and strength is None and "strength" not in errors:
            errors["strength"] = ["This project asks how much better (1, 2 or 3)."]
    else:
        strength = None  # strength has no meaning for tie / both bad
    if not project.ask_strength:
        strength = None
    if project.rationale_required and not (rationale or "").strip():
        errors["rationale"] = ["A rationale is required in this project."]
    criteria = dict(criteria or {})
    allowed = set(project.extra_criteria or [])
    bad = [k for k in criteria if k not in allowed]
    if bad:
        errors["criteria"] = [f"Unknown criteria: {', '.join(sorted(bad))}."]
    elif any(v not in CRITERION_CHOICES for v in criteria.values()):
        errors["criteria"] = [f"Each criterion answer must be one of {sorted(CRITERION_CHOICES)}."]
    if errors:
        raise ValidationError(errors)
    return strength, criteria


def _lock_task(task_id: int) -> ComparisonTask:
    return ComparisonTask.objects.select_for_update(of=("self",)).select_related("project").get(pk=task_id)


class IdempotencyKeyConflict(ValidationError):
    """An idempotency key the annotator already used for a judgment on another task (the API answers 409)."""


def _counts_toward_k(judgment: Judgment) -> bool:
    """``COUNTED_JUDGMENTS`` for a judgment already in memory."""
    return not judgment.is_extra and judgment.source != JudgmentSource.PRIOR


def _counted_choices(task: ComparisonTask) -> list[str]:
    return list(Judgment.objects.filter(COUNTED_JUDGMENTS, task=task).values_list("choice", flat=True))


def _refresh_task_state(task: ComparisonTask, choices: list[str] | None = None) -> None:
    """Recompute ``judgment_count`` and ``status`` of a locked task from its counted choices."""
    if choices is None:
        choices = _counted_choices(task)
    task.judgment_count = len(choices)
    need = task_required_judgments(task)
    if task.status == TaskStatus.ADJUDICATED and Adjudication.objects.filter(task=task).exists():
        status = TaskStatus.ADJUDICATED
    elif need is None or len(choices) < need:
        status = TaskStatus.OPEN
    elif len(set(choices)) > 1:
        status = TaskStatus.NEEDS_REVIEW
    else:
        status = TaskStatus.COMPLETE
    task.status = status
    task.save(update_fields=["judgment_count", "status"])


def _slot_free(task: ComparisonTask, annotator, now) -> bool:
    """A slot is free if the annotator holds a live lease on it (their reserved slot) or if counted
    judgments plus other people's live leases leave room under k."""
    need = task_required_judgments(task)
    if need is None:
        return True
    if task.judgment_count >= need:
        return False
    leases = TaskLease.objects.filter(task=task, expires_at__gt=now).aggregate(
        mine=Count("pk", filter=Q(annotator=annotator)), others=Count("pk", filter=~Q(annotator=annotator))
    )
    return bool(leases["mine"]) or task.judgment_count + leases["others"] < need


def gold_feedback_for(task: ComparisonTask, judgment: Judgment) -> dict | None:
    """What an annotator is told after answering a gold task, or None (not gold, or feedback is off)."""
    if task.kind != TaskKind.GOLD or not task.project.gold_feedback:
        return None
    return {
        "correct": judgment.choice == task.gold_choice,
        "your_choice": judgment.choice,
        "gold_choice": task.gold_choice,
        "explanation": task.gold_explanation,
    }


def _record_judgment(
    *,
    task: ComparisonTask,
    annotator,
    now,
    counted: list[str] | None = None,
    source=JudgmentSource.HUMAN,
    ranking=None,
    **answer,
) -> Judgment:
    """Insert a judgment on a locked task, decide counted vs extra, release the lease, refresh state.
    ``counted`` are the task's counted choices before this one, when the caller already read them."""
    if counted is None:
        counted = _counted_choices(task)
    task.judgment_count = len(counted)
    is_extra = not _slot_free(task, annotator, now)
    # A lease handed out by the random share of a "mix" project marks the judgment (unbiased evaluation).
    served_random = (
        task.project.serving_order == ServingOrder.MIX
        and TaskLease.objects.filter(task=task, annotator=annotator, served_random=True).exists()
    )
    judgment = Judgment.objects.create(
        task=task,
        annotator=annotator,
        source=source,
        ranking=ranking,
        is_extra=is_extra,
        served_random=served_random,
        **answer,
    )
    TaskLease.objects.filter(task=task, annotator=annotator).delete()
    _refresh_task_state(task, counted if is_extra else [*counted, judgment.choice])
    return judgment


def judgment_submit(
    *,
    task: ComparisonTask,
    annotator,
    choice: str,
    strength: int | None = None,
    rationale: str = "",
    criteria: dict | None = None,
    time_spent_ms: int = 0,
    idempotency_key: str | None = None,
) -> SubmitResult:
    """Record one annotator's answer for a task.

    Idempotent: a repeated ``idempotency_key`` returns the first judgment (``created=False``); the same key
    on another task raises ``IdempotencyKeyConflict`` rather than dropping the answer. A late submit
    whose lease expired is kept: counted if a slot is still free, else stored with ``is_extra=True``.
    """
    idempotency_key = (idempotency_key or "").strip() or None
    if idempotency_key and len(idempotency_key) > 64:
        raise ValidationError({"idempotency_key": ["At most 64 characters."]})
    now = timezone.now()
    with transaction.atomic():
        locked = _lock_task(task.pk)
        on_task = list(Judgment.objects.filter(task=locked))
        mine = next((j for j in on_task if j.annotator_id == annotator.pk), None)
        if mine is not None and idempotency_key and mine.idempotency_key == idempotency_key:
            return SubmitResult(mine, False, gold_feedback_for(locked, mine))
        if idempotency_key:
            first = (
                Judgment.objects.select_related("task__project")
                .filter(annotator=annotator, idempotency_key=idempotency_key)
                .first()
            )
            if first is not None:
                if first.task_id != locked.pk:
                    raise IdempotencyKeyConflict(
                        {
                            "idempotency_key": [
                                f"This key was already used for your judgment on task {first.task_id}; "
                                "use a new key for each task."
                            ]
                        },
                        code="conflict",
                    )
                return SubmitResult(first, False, gold_feedback_for(first.task, first))
        if mine is not None:
            raise ValidationError({"task": ["You already judged this task."]})
        strength, criteria = _validate_answer(
            project=locked.project,
            choice=choice,
            strength=strength,
            rationale=rationale,
            criteria=criteria,
        )
        judgment = _record_judgment(
            task=locked,
            annotator=annotator,
            now=now,
            counted=[j.choice for j in on_task if _counts_toward_k(j)],
            choice=choice,
            strength=strength,
            rationale=(rationale or "").strip(),
            criteria=criteria,
            time_spent_ms=max(0, min(int(time_spent_ms or 0), 2**31 - 1)),
            idempotency_key=idempotency_key,
        )
    task.judgment_count, task.status = locked.judgment_count, locked.status
    if locked.project.model_pairing == ModelPairing.ACTIVE:
        _pairing_refresh_later(locked.project_id)
    return SubmitResult(judgment, True, gold_feedback_for(locked, judgment))


def _pairing_refresh_later(project_id: int) -> None:
    """Active model pairing: re-score the open pairs once this vote is committed (a broker outage never fails
    the annotator's submit; the next vote re-scores anyway)."""
    from annotation.tasks import pairing_refresh
    from config.jobs import enqueue

    enqueue(pairing_refresh, project_id)


def judgment_undo(*, judgment: Judgment, annotator) -> None:
    """Withdraw one's own judgment within the project's undo grace period.

    Gold answers are final: the annotator may already have seen the correct answer, so undoing one would
    let them fix it. The task comes back to the annotator (a fresh lease) so the UI can show it again, and
    the oldest extra judgment, if any, takes over the freed slot.
    """
    if judgment.annotator_id != annotator.pk:
        raise ValidationError({"judgment": ["You can only undo your own judgment."]})
    now = timezone.now()
    with transaction.atomic():
        task = _lock_task(judgment.task_id)
        grace = timedelta(seconds=task.project.undo_grace_seconds)
        if now - judgment.created_at > grace:
            raise ValidationError({"judgment": ["The undo grace period has passed."]})
        if task.kind == TaskKind.GOLD:
            # Say why only where the annotator was already told it was gold (feedback on): elsewhere the
            # reason itself would reveal which tasks are gold.
            reason = (
                "Answers to gold (quality check) tasks cannot be undone."
                if task.project.gold_feedback
                else "This answer can no longer be undone."
            )
            raise ValidationError({"judgment": [reason]})
        if task.status == TaskStatus.ADJUDICATED:
            raise ValidationError({"judgment": ["This task has been adjudicated."]})
        deleted, _ = Judgment.objects.filter(pk=judgment.pk, annotator=annotator).delete()
        if not deleted:
            raise ValidationError({"judgment": ["Judgment not found."]})
        _refresh_task_state(task)
        need = task_required_judgments(task)
        if need is not None and task.judgment_count < need:
            spare = need - task.judgment_count
            promote = list(
                Judgment.objects.filter(task=task, is_extra=True).order_by("created_at", "id")[:spare]
            )
            if promote:
                Judgment.objects.filter(pk__in=[j.pk for j in promote]).update(is_extra=False)
                _refresh_task_state(task)
        if need is not None and task.judgment_count < need and judgment.source == JudgmentSource.HUMAN:
            TaskLease.objects.update_or_create(
                task=task,
                annotator=annotator,
                defaults={"expires_at": now + timedelta(seconds=task.project.lease_seconds)},
            )


def task_skip(*, task: ComparisonTask, annotator, reason: str = "") -> TaskSkip:
    """Skip a task: it is never served to this annotator again and their lease is released."""
    with transaction.atomic():
        locked = _lock_task(task.pk)
        skip, _ = TaskSkip.objects.get_or_create(
            task=locked, annotator=annotator, defaults={"reason": (reason or "")[:200]}
        )
        TaskLease.objects.filter(task=locked, annotator=annotator).delete()
    return skip


def _task_for_pair(prompt: Prompt, first_id: int, second_id: int, rng: random.Random) -> ComparisonTask:
    pair = {first_id, second_id}
    for task in ComparisonTask.objects.filter(
        prompt=prompt, candidate_a_id__in=pair, candidate_b_id__in=pair
    ).order_by("id"):
        if task.kind not in (TaskKind.GOLD, TaskKind.REPEAT):
            return task
    a, b = (first_id, second_id) if rng.random() < 0.5 else (second_id, first_id)
    return ComparisonTask.objects.create(
        project=prompt.project, prompt=prompt, candidate_a_id=a, candidate_b_id=b
    )


def ranking_submit(*, prompt: Prompt, annotator, order: list[int], time_spent_ms: int = 0) -> Ranking:
    """Store a K-way ranking (best first) and expand it into one pairwise judgment per candidate pair.

    Each pair reuses an existing task of that pair (either A/B order) or gets a new one with random A/B.
    Pairs the annotator already judged keep their earlier judgment. A ranking of n candidates writes
    n*(n-1)/2 judgments, so n is capped by the project's ``max_ranking_length`` (itself at most
    ``PREFLAB_MAX_RANKING_LENGTH``), checked before anything is read or written.
    """
    cap = min(prompt.project.max_ranking_length, settings.PREFLAB_MAX_RANKING_LENGTH)
    if len(order) > cap:
        raise ValidationError(
            {
                "order": [
                    f"Rank at most {cap} candidates (the project's max_ranking_length); got {len(order)}."
                ]
            }
        )
    order = [int(x) for x in order]
    if len(order) < 2 or len(set(order)) != len(order):
        raise ValidationError({"order": ["Give at least two distinct candidate ids."]})
    known = set(prompt.candidates.filter(pk__in=order).values_list("pk", flat=True))
    if known != set(order):
        raise ValidationError({"order": ["Every id must be a candidate of this prompt."]})
    rng = random.Random()
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                ranking = Ranking.objects.create(
                    project=prompt.project,
                    prompt=prompt,
                    annotator=annotator,
                    order=order,
                    time_spent_ms=max(0, int(time_spent_ms or 0)),
                )
        except IntegrityError as exc:
            raise ValidationError({"prompt": ["You already ranked this prompt."]}) from exc
        for better, worse in itertools.combinations(order, 2):
            task = _lock_task(_task_for_pair(prompt, better, worse, rng).pk)
            if Judgment.objects.filter(task=task, annotator=annotator).exists():
                continue
            _record_judgment(
                task=task,
                annotator=annotator,
                now=now,
                source=JudgmentSource.RANKING,
                ranking=ranking,
                choice=Choice.A if task.candidate_a_id == better else Choice.B,
            )
    return ranking


def adjudication_create(
    *, task: ComparisonTask, reviewer, choice: str, strength: int | None = None, note: str = ""
) -> Adjudication:
    """Record a reviewer's final answer for a task; the task becomes ``adjudicated``."""
    valid = {c.value for c in Choice}
    if choice not in valid:
        raise ValidationError({"choice": [f"Must be one of {sorted(valid)}."]})
    if strength in ("", None) or choice not in (Choice.A, Choice.B):
        strength = None
    else:
        try:
            strength = int(strength)
        except (TypeError, ValueError):
            strength = -1
        if strength not in STRENGTH_CHOICES:
            raise ValidationError({"strength": ["Must be 1, 2 or 3."]})
    with transaction.atomic():
        locked = _lock_task(task.pk)
        if Adjudication.objects.filter(task=locked).exists():
            raise ValidationError({"task": ["This task is already adjudicated."]})
        if not Judgment.objects.filter(task=locked).exists():
            raise ValidationError({"task": ["This task has no judgments to adjudicate."]})
        adjudication = Adjudication.objects.create(
            task=locked, reviewer=reviewer, choice=choice, strength=strength, note=(note or "").strip()
        )
        locked.status = TaskStatus.ADJUDICATED
        locked.save(update_fields=["status"])
    task.status = locked.status
    return adjudication
