"""Annotator JSON API: lease the next task, submit (idempotent), skip, undo, rank, review and adjudicate.

Model names are never sent to annotators; a token needs the ``annotate`` scope. Reviewer endpoints also
need the reviewer role.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.auth import ANNOTATE_SCOPES, HasRole, TokenScopes, visible_projects
from annotation.models import DB_INT_MAX, Choice, ComparisonTask, Judgment, Prompt, TaskKind
from annotation.selectors.assignment import annotator_progress, review_queue
from annotation.selectors.dashboard import annotator_dashboard
from annotation.selectors.projects import reviewer_projects
from annotation.services.assignment import task_next_for_annotator
from annotation.services.judgments import (
    adjudication_create,
    judgment_submit,
    judgment_undo,
    ranking_submit,
    task_skip,
)


def task_payload(task: ComparisonTask, lease=None) -> dict:
    """What an annotator may see of a task: no model names, no gold answer, no hint that it is gold."""
    prompt = task.prompt
    return {
        "id": task.pk,
        "project": task.project_id,
        "prompt": {"id": prompt.pk, "text": prompt.text, "messages": prompt.messages},
        "a": {"text": task.candidate_a.text},
        "b": {"text": task.candidate_b.text},
        "lease_expires_at": lease.expires_at if lease else None,
    }


def visible_task(user, task_id: int) -> ComparisonTask:
    return get_object_or_404(
        ComparisonTask.objects.select_related("project", "prompt", "candidate_a", "candidate_b"),
        pk=task_id,
        project__in=visible_projects(user),
    )


class AnnotateView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes, HasRole]
    read_scopes = write_scopes = ANNOTATE_SCOPES


class TaskNextApi(AnnotateView):
    class OutputSerializer(serializers.Serializer):
        task = serializers.DictField(allow_null=True)
        progress = serializers.DictField()

    @extend_schema(
        summary="Lease the next task for me in a project (null when the queue is empty for me)",
        request=None,
        responses={200: OutputSerializer},
    )
    def post(self, request, project_id: int):
        project = get_object_or_404(visible_projects(request.user), pk=project_id)
        task = task_next_for_annotator(project=project, annotator=request.user)
        payload = None
        if task is not None:
            task = visible_task(request.user, task.pk)
            payload = task_payload(task, task.leases.filter(annotator=request.user).first())
        return Response(
            {"task": payload, "progress": annotator_progress(project=project, annotator=request.user)}
        )


class TaskSubmitApi(AnnotateView):
    class InputSerializer(serializers.Serializer):
        choice = serializers.ChoiceField(choices=Choice.choices)
        strength = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=3)
        rationale = serializers.CharField(required=False, allow_blank=True, default="", max_length=10000)
        criteria = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
        time_spent_ms = serializers.IntegerField(required=False, default=0, min_value=0, max_value=DB_INT_MAX)
        idempotency_key = serializers.CharField(required=False, allow_blank=True, max_length=64)

    class OutputSerializer(serializers.Serializer):
        judgment = serializers.IntegerField()
        created = serializers.BooleanField()
        is_extra = serializers.BooleanField()
        gold_feedback = serializers.DictField(allow_null=True)
        undo_grace_seconds = serializers.IntegerField()

    @extend_schema(
        summary="Submit my judgment for a task (Idempotency-Key header or idempotency_key field)",
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            200: OpenApiResponse(OutputSerializer, "idempotent replay"),
            409: OpenApiResponse(description="the idempotency key was already used on another task"),
        },
    )
    def post(self, request, task_id: int):
        task = visible_task(request.user, task_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        key = request.headers.get("Idempotency-Key") or values.pop("idempotency_key", None)
        values.pop("idempotency_key", None)
        # a key already used on another task raises IdempotencyKeyConflict: 409 (annotation.api.errors)
        result = judgment_submit(task=task, annotator=request.user, idempotency_key=key, **values)
        body = {
            "judgment": result.judgment.pk,
            "created": result.created,
            "is_extra": result.judgment.is_extra,
            "gold_feedback": result.gold_feedback,
            "undo_grace_seconds": task.project.undo_grace_seconds,
        }
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class TaskSkipApi(AnnotateView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)

    class OutputSerializer(serializers.Serializer):
        skip = serializers.IntegerField()
        task = serializers.IntegerField()
        reason = serializers.CharField()

    @extend_schema(
        summary="Skip a task (never served to me again)",
        request=InputSerializer,
        responses={200: OutputSerializer},
    )
    def post(self, request, task_id: int):
        task = visible_task(request.user, task_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        skip = task_skip(task=task, annotator=request.user, reason=data.validated_data["reason"])
        return Response({"skip": skip.pk, "task": task.pk, "reason": skip.reason})


class JudgmentUndoApi(AnnotateView):
    class OutputSerializer(serializers.Serializer):
        undone = serializers.IntegerField()
        task = serializers.IntegerField()

    @extend_schema(
        summary="Undo my judgment within the project's grace period",
        request=None,
        responses={200: OutputSerializer},
    )
    def post(self, request, judgment_id: int):
        judgment = get_object_or_404(
            Judgment.objects.select_related("task__project"),
            pk=judgment_id,
            annotator=request.user,
        )
        judgment_undo(judgment=judgment, annotator=request.user)
        return Response({"undone": judgment_id, "task": judgment.task_id})


class PromptRankApi(AnnotateView):
    class InputSerializer(serializers.Serializer):
        order = serializers.ListField(
            child=serializers.IntegerField(),
            min_length=2,
            help_text="Candidate ids, best first: at most the project's max_ranking_length.",
        )
        time_spent_ms = serializers.IntegerField(required=False, default=0, min_value=0, max_value=DB_INT_MAX)

    class OutputSerializer(serializers.Serializer):
        ranking = serializers.IntegerField()
        judgments = serializers.IntegerField()

    @extend_schema(
        summary="Rank a prompt's candidates (best first); expands to pairwise judgments",
        request=InputSerializer,
        responses={201: OutputSerializer},
    )
    def post(self, request, prompt_id: int):
        prompt = get_object_or_404(Prompt, pk=prompt_id, project__in=visible_projects(request.user))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ranking = ranking_submit(prompt=prompt, annotator=request.user, **data.validated_data)
        pairs = Judgment.objects.filter(ranking=ranking).count()
        return Response({"ranking": ranking.pk, "judgments": pairs}, status=status.HTTP_201_CREATED)


class MyDashboardApi(AnnotateView):
    @extend_schema(
        summary="My counts, agreement with consensus, gold accuracy and swap consistency",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        return Response(annotator_dashboard(annotator=request.user, projects=visible_projects(request.user)))


class ReviewsAProject(permissions.BasePermission):
    """The caller reviews at least one project (``reviewer_projects``: the global reviewer role, or a
    membership role of reviewer). Checked before the object, like ``HasRole``."""

    message = HasRole.message

    def has_permission(self, request, view) -> bool:
        return reviewer_projects(request.user).exists()


class ReviewQueueApi(AnnotateView):
    permission_classes = [*AnnotateView.permission_classes, ReviewsAProject]

    class FilterSerializer(serializers.Serializer):
        project = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)

    @extend_schema(
        summary="Tasks whose judgments disagree, with every judgment and rationale",
        parameters=[FilterSerializer],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        projects = reviewer_projects(request.user)
        if "project" in filters.validated_data:
            projects = projects.filter(pk=filters.validated_data["project"])
        tasks = review_queue(projects=projects)[:100]
        return Response(
            {
                "results": [
                    {
                        **task_payload(t),
                        "kind": t.kind,
                        # Reviewers only, labelled as the model's; task_payload (what annotators get) omits it.
                        "reward_model_prediction": (
                            None
                            if t.predicted_preference is None
                            else {
                                "label": "Reward model's prediction (not a human judgment)",
                                "p_a_better": round(t.predicted_preference, 4),
                            }
                        ),
                        "judgments": [
                            {
                                "id": j.pk,
                                "annotator": j.annotator.username,
                                "choice": j.choice,
                                "strength": j.strength,
                                "rationale": j.rationale,
                                "is_extra": j.is_extra,
                                "served_random": j.served_random,
                            }
                            for j in t.judgments.all()
                        ],
                    }
                    for t in tasks
                ]
            }
        )


class TaskAdjudicateApi(AnnotateView):
    permission_classes = [*AnnotateView.permission_classes, ReviewsAProject]

    class InputSerializer(serializers.Serializer):
        choice = serializers.ChoiceField(choices=Choice.choices)
        strength = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=3)
        note = serializers.CharField(required=False, allow_blank=True, default="")

    class OutputSerializer(serializers.Serializer):
        adjudication = serializers.IntegerField()
        task = serializers.IntegerField()
        choice = serializers.CharField()

    @extend_schema(
        summary="Record the adjudicated answer for a disputed task",
        request=InputSerializer,
        responses={201: OutputSerializer},
    )
    def post(self, request, task_id: int):
        task = visible_task(request.user, task_id)
        if not reviewer_projects(request.user).filter(pk=task.project_id).exists():
            raise exceptions.PermissionDenied(
                "Only this project's reviewers can adjudicate.", code="role_required"
            )
        if task.kind == TaskKind.REPEAT:
            return Response(
                {"error": {"code": "invalid", "message": "Swapped repeats are not adjudicated."}},
                status=status.HTTP_400_BAD_REQUEST,
            )
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        adjudication = adjudication_create(task=task, reviewer=request.user, **data.validated_data)
        return Response(
            {"adjudication": adjudication.pk, "task": task.pk, "choice": adjudication.choice},
            status=status.HTTP_201_CREATED,
        )
