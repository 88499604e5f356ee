"""Judgments: create through the submit service (idempotent with ``Idempotency-Key``), list with filters.

Annotators see only their own judgments; reviewers, engineers and admins see every judgment of the projects
they review. A token needs the ``annotate`` scope to submit.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from annotation.api.core.base import IdFilter, ProjectAccessMixin, UtcIsoDateTimeFilter
from annotation.auth import ANNOTATE_SCOPES, READ_SCOPES
from annotation.models import DB_INT_MAX, Choice, Judgment, JudgmentSource
from annotation.selectors.projects import judgment_list_for_user, task_list_for_user
from annotation.services.judgments import judgment_submit


class JudgmentFilter(django_filters.FilterSet):
    project = IdFilter(field_name="task__project_id")
    task = IdFilter(field_name="task_id")
    annotator = IdFilter(field_name="annotator_id")
    choice = django_filters.ChoiceFilter(choices=Choice.choices)
    source = django_filters.ChoiceFilter(choices=JudgmentSource.choices)
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Judgment
        fields = ["project", "task", "annotator", "choice", "source", "created_after", "created_before"]


JUDGMENT_FIELDS = [
    "id",
    "task",
    "project",
    "annotator",
    "annotator_username",
    "choice",
    "strength",
    "rationale",
    "criteria",
    "time_spent_ms",
    "source",
    "is_extra",
    "created_at",
]

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Retrying with the same key returns the first judgment (200) instead of a new one.",
)


@extend_schema_view(
    list=extend_schema(summary="Judgments: your own, plus every judgment of projects you review"),
    retrieve=extend_schema(summary="One judgment"),
)
class JudgmentViewSet(
    ProjectAccessMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Judgments: submit (token scope `annotate`, idempotent with `Idempotency-Key`) and list. Annotators see
    their own; reviewers, engineers and admins see every judgment of their projects."""

    queryset = Judgment.objects.none()
    filterset_class = JudgmentFilter
    read_scopes = READ_SCOPES
    write_scopes = ANNOTATE_SCOPES

    class InputSerializer(serializers.Serializer):
        task = serializers.IntegerField()
        choice = serializers.ChoiceField(choices=Choice.choices)
        strength = serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=1,
            max_value=3,
            help_text="1 slightly, 2 clearly, 3 much.",
        )
        rationale = serializers.CharField(required=False, allow_blank=True, default="")
        criteria = serializers.DictField(
            child=serializers.CharField(),
            required=False,
            help_text='Answers to extra criteria, e.g. {"harmless": "A"}.',
        )
        time_spent_ms = serializers.IntegerField(required=False, min_value=0, max_value=DB_INT_MAX, default=0)
        idempotency_key = serializers.CharField(
            required=False, allow_blank=True, max_length=64, help_text="Same as the Idempotency-Key header."
        )

        class Meta:
            ref_name = "JudgmentInput"

    class OutputSerializer(serializers.ModelSerializer):
        """One annotator's answer for one comparison task."""

        project = serializers.IntegerField(source="task.project_id")
        annotator_username = serializers.CharField(source="annotator.username")

        class Meta:
            model = Judgment
            fields = JUDGMENT_FIELDS
            ref_name = "Judgment"

    class SubmitOutputSerializer(OutputSerializer):
        """The submitted judgment (or, on an idempotent retry, the first one) and gold feedback."""

        gold_feedback = serializers.DictField(
            allow_null=True, required=False, help_text="Set for gold tasks when the project shows feedback."
        )

        class Meta:
            model = Judgment
            fields = [*JUDGMENT_FIELDS, "gold_feedback"]
            ref_name = "JudgmentSubmitted"

    def get_queryset(self):
        return judgment_list_for_user(user=self.request.user, access=self.access)

    def get_serializer_class(self):
        return self.InputSerializer if self.action == "create" else self.OutputSerializer

    @extend_schema(
        summary="Submit a judgment (token scope: annotate)",
        parameters=[IDEMPOTENCY_HEADER],
        request=InputSerializer,
        responses={
            201: SubmitOutputSerializer,
            200: OpenApiResponse(SubmitOutputSerializer, description="Idempotent retry: the first judgment."),
        },
    )
    def create(self, request, *args, **kwargs):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        task = (
            task_list_for_user(user=request.user)
            .select_related("project")
            .filter(pk=data.pop("task"))
            .first()
        )
        if task is None:
            raise serializers.ValidationError({"task": ["No such task in your projects."]})
        body_key = data.pop("idempotency_key", None)
        key = request.headers.get("Idempotency-Key") or body_key
        result = judgment_submit(task=task, annotator=request.user, idempotency_key=key, **data)
        body = dict(self.OutputSerializer(result.judgment).data)
        body["gold_feedback"] = result.gold_feedback
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)
