"""Writes for projects, their members and content (prompts, candidates, tasks) and per-user API tokens.

Every function takes keyword-only arguments, runs in one transaction and raises Django's
``ValidationError({field: [reason]})`` on bad input (the API renders it as a 400 error body).
"""

from __future__ import annotations

import random
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Value, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from annotation.models import (
    COUNTED_JUDGMENTS,
    Adjudication,
    ApiToken,
    Candidate,
    Choice,
    ComparisonTask,
    Judgment,
    JudgmentSource,
    Project,
    ProjectMembership,
    Prompt,
    Role,
    TaskKind,
    TaskStatus,
    TokenScope,
    content_hash,
)

# Project settings an engineer may set at creation or change later.
PROJECT_EDITABLE_FIELDS = (
    "name",
    "description",
    "guidelines",
    "overlap_k",
    "pairing_strategy",
    "pairs_per_prompt",
    "max_ranking_length",
    "allow_tie",
    "allow_both_bad",
    "ask_strength",
    "rationale_required",
    "extra_criteria",
    "gold_rate",
    "gold_feedback",
    "swap_repeat_rate",
    "lease_seconds",
    "undo_grace_seconds",
    "quality_settings",
    "retrain_after_judgments",
    "retrain_agreement_drop",
    "daily_target",
    "serving_order",
    "random_share",
    "model_pairing",
)


def _check_fields(fields: dict) -> None:
    unknown = sorted(set(fields) - set(PROJECT_EDITABLE_FIELDS))
    if unknown:
        raise ValidationError({name: ["Not an editable project setting."] for name in unknown})


@transaction.atomic
def project_create(*, created_by, name: str, **settings) -> Project:
    """Create a project; its creator becomes an engineer member."""
    _check_fields(settings)
    project = Project(name=name, created_by=created_by, **settings)
    project.full_clean()
    project.save()
    if created_by is not None:
        ProjectMembership.objects.create(project=project, user=created_by, role=Role.ENGINEER)
    return project


@transaction.atomic
def project_update(*, project: Project, **changes) -> Project:
    """Change project settings. A new ``overlap_k`` re-decides the status of the tasks it governs."""
    _check_fields(changes)
    old_k = None
    if "overlap_k" in changes and project.pk is not None:
        # Locked so two concurrent updates cannot each recompute against a k the other replaces.
        old_k = Project.objects.select_for_update().values_list("overlap_k", flat=True).get(pk=project.pk)
    for name, value in changes.items():
        setattr(project, name, value)
    project.full_clean()
    project.save(update_fields=list(changes) or None)
    if old_k is not None and old_k != project.overlap_k:
        _tasks_recount_for_overlap(project=project, raised=project.overlap_k > old_k)
    return project


def _judgment_tally(judgments, aggregate, task_ref: str = "pk") -> Coalesce:
    """Per outer row: ``aggregate`` over ``judgments`` of the task ``OuterRef(task_ref)``, 0 when none."""
    return Coalesce(
        Subquery(
            judgments.filter(task=OuterRef(task_ref)).values("task").annotate(n=aggregate).values("n")[:1],
            output_field=IntegerField(),
        ),
        Value(0),
    )


def _tasks_recount_for_overlap(*, project: Project, raised: bool) -> None:
    """Re-decide ``judgment_count`` and ``status`` of the project's k-governed tasks after k changed, in
    set-based statements (a project can hold 100k tasks), by the rule of
    ``annotation.services.judgments._refresh_task_state``: fewer counted judgments than k is open; k or more
    that disagree needs review; k or more that agree is complete. Gold items and swapped repeats do not
    depend on k; adjudicated tasks keep the reviewer's decision."""
    k = project.overlap_k
    tasks = (
        ComparisonTask.objects.filter(project=project)
        .exclude(kind__in=[TaskKind.GOLD, TaskKind.REPEAT])
        .exclude(Q(status=TaskStatus.ADJUDICATED) & Exists(Adjudication.objects.filter(task=OuterRef("pk"))))
    )
    # Lock the rows first (in id order, as submits lock them one at a time): this waits for in-flight
    # submits to commit, and the statements below, each with a fresh snapshot, count their judgments.
    list(tasks.select_for_update(of=("self",)).order_by("pk").values_list("pk", flat=True))
    if raised:
        # Late answers kept as extras take the new free slots, oldest first (as after an undo).
        counted_n = _judgment_tally(
            Judgment.objects.filter(COUNTED_JUDGMENTS), Count("pk"), task_ref="task_id"
        )
        ranked = (
            Judgment.objects.filter(task__in=tasks, is_extra=True)
            .exclude(source=JudgmentSource.PRIOR)
            .annotate(
                rank=Window(RowNumber(), partition_by=[F("task_id")], order_by=[F("created_at"), F("id")]),
                free=Value(k) - counted_n,
            )
            .filter(rank__lte=F("free"))
        )
        promote = list(ranked.values_list("pk", flat=True))
        if promote:
            Judgment.objects.filter(pk__in=promote).update(is_extra=False)
    counted = Judgment.objects.filter(COUNTED_JUDGMENTS)
    recount = _judgment_tally(counted, Count("pk"))
    tasks.exclude(judgment_count=recount).update(judgment_count=recount)
    tasks.filter(judgment_count__lt=k).exclude(status=TaskStatus.OPEN).update(status=TaskStatus.OPEN)
    decided = tasks.filter(judgment_count__gte=k).annotate(
        answers=_judgment_tally(counted, Count("choice", distinct=True))
    )
    decided.filter(answers__gt=1).exclude(status=TaskStatus.NEEDS_REVIEW).update(
        status=TaskStatus.NEEDS_REVIEW
    )
    decided.filter(answers__lte=1).exclude(status=TaskStatus.COMPLETE).update(status=TaskStatus.COMPLETE)


@transaction.atomic
def project_delete(*, project: Project) -> None:
    """Delete a project and everything in it (prompts, tasks, judgments)."""
    project.delete()


@transaction.atomic
def membership_add(*, project: Project, user, role: str = Role.ANNOTATOR) -> tuple[ProjectMembership, bool]:
    """Add ``user`` to ``project`` with ``role``, or change the role of an existing member.

    Returns the membership and whether it was created.
    """
    if role not in Role.values:
        raise ValidationError({"role": [f"Unknown role '{role}'."]})
    if not user.is_active:
        raise ValidationError({"user": ["This user is inactive."]})
    membership, created = ProjectMembership.objects.select_for_update().get_or_create(
        project=project, user=user, defaults={"role": role}
    )
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership, created


@transaction.atomic
def membership_remove(*, project: Project, user) -> bool:
    """Remove ``user`` from ``project``; their judgments stay. Returns False if they were not a member."""
    deleted, _ = ProjectMembership.objects.filter(project=project, user=user).delete()
    return bool(deleted)


@transaction.atomic
def prompt_create(
    *,
    project: Project,
    text: str,
    messages: list | None = None,
    metadata: dict | None = None,
    external_id: str = "",
) -> Prompt:
    """Add a prompt. Content is hashed (the chat messages when given, else the text) to refuse duplicates."""
    if not text.strip():
        raise ValidationError({"text": ["This field may not be blank."]})
    messages = messages or None
    # Same hash as the importer (messages when given, else text), so API and import dedupe together.
    digest = content_hash(messages if messages is not None else text)
    if Prompt.objects.filter(project=project, content_hash=digest).exists():
        raise ValidationError({"text": ["A prompt with this content already exists in the project."]})
    return Prompt.objects.create(
        project=project,
        text=text,
        messages=messages,
        metadata=metadata or {},
        external_id=external_id,
        content_hash=digest,
    )


@transaction.atomic
def candidate_create(
    *, prompt: Prompt, text: str, model_name: str = "", generation_params: dict | None = None
) -> Candidate:
    if not text.strip():
        raise ValidationError({"text": ["This field may not be blank."]})
    digest = content_hash(text)
    if Candidate.objects.filter(prompt=prompt, content_hash=digest).exists():
        raise ValidationError({"text": ["This prompt already has a candidate with this text."]})
    return Candidate.objects.create(
        prompt=prompt,
        text=text,
        model_name=model_name,
        generation_params=generation_params or {},
        content_hash=digest,
    )


@transaction.atomic
def task_create(
    *,
    project: Project,
    candidate_a: Candidate,
    candidate_b: Candidate,
    kind: str = TaskKind.STANDARD,
    gold_choice: str = "",
    gold_explanation: str = "",
    priority: int = 0,
    metadata: dict | None = None,
    randomize_order: bool = True,
    rng: random.Random | None = None,
) -> ComparisonTask:
    """Create a comparison task between two candidates of one prompt of ``project``.

    With ``randomize_order`` the A/B sides are shuffled (a gold answer A/B is swapped with them), so
    position bias does not line up with the order candidates were added in.
    """
    errors: dict[str, list[str]] = {}
    prompt = candidate_a.prompt
    if prompt.project_id != project.pk:
        errors["candidate_a"] = ["This candidate belongs to another project."]
    if candidate_b.prompt_id != candidate_a.prompt_id:
        errors["candidate_b"] = ["Both candidates must answer the same prompt."]
    if candidate_a.pk == candidate_b.pk:
        errors["candidate_b"] = ["A task cannot compare a candidate with itself."]
    if kind not in TaskKind.values:
        errors["kind"] = [f"Unknown task kind '{kind}'."]
    if kind == TaskKind.GOLD and gold_choice not in Choice.values:
        errors["gold_choice"] = ["A gold task needs its known answer (A, B, tie or both_bad)."]
    elif gold_choice and gold_choice not in Choice.values:
        errors["gold_choice"] = [f"Unknown choice '{gold_choice}'."]
    if errors:
        raise ValidationError(errors)
    if randomize_order and (rng or random).random() < 0.5:
        candidate_a, candidate_b = candidate_b, candidate_a
        gold_choice = {"A": "B", "B": "A"}.get(gold_choice, gold_choice)
    return ComparisonTask.objects.create(
        project=project,
        prompt=prompt,
        candidate_a=candidate_a,
        candidate_b=candidate_b,
        kind=kind,
        gold_choice=gold_choice,
        gold_explanation=gold_explanation,
        priority=priority,
        metadata=metadata or {},
    )


@transaction.atomic
def api_token_create(
    *,
    user,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    rate_limit_per_minute: int | None = None,
    minted_by: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for ``user``. Returns the token and its raw key; only a hash is stored, so the key
    cannot be shown again. A token ``minted_by`` another shares the rate-limit budget of that token's
    chain (its ``budget_root``)."""
    errors: dict[str, list[str]] = {}
    if not name.strip():
        errors["name"] = ["This field may not be blank."]
    unknown = sorted(set(scopes) - set(TokenScope.values))
    if unknown:
        errors["scopes"] = [
            f"Unknown scope '{s}'; choose from {', '.join(TokenScope.values)}." for s in unknown
        ]
    elif not scopes:
        errors["scopes"] = ["A token needs at least one scope."]
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = ["Must be in the future."]
    if errors:
        raise ValidationError(errors)
    raw = ApiToken.generate_key()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        key_prefix=raw[:8],
        key_hash=ApiToken.hash_key(raw),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
        rate_limit_per_minute=rate_limit_per_minute,
        budget_root=(minted_by.budget_root or minted_by) if minted_by is not None else None,
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke a token at once (idempotent: a revoked token keeps its first revocation time)."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
