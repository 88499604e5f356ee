"""Prompts, candidate responses and comparison tasks of the projects a user can see.

Members read them; the project's engineers and admins add them. Model names, generation parameters, task
kinds, statuses, judgment counts and gold answers are shown only to reviewers, engineers and admins:
annotators judge blind and cannot tell gold items from standard ones.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from annotation.api.core.base import IdFilter, ProjectAccessMixin, UtcIsoDateTimeFilter
from annotation.models import DB_INT_MAX, Candidate, ComparisonTask, Prompt, TaskKind, TaskStatus
from annotation.selectors.projects import (
    candidate_list_for_user,
    project_access_for_user,
    prompt_list_for_user,
    task_list_for_user,
)
from annotation.services.projects import candidate_create, prompt_create, task_create


class ReviewerOnlyFilterSet(django_filters.FilterSet):
    """Filters named in ``reviewer_only`` only search projects where the user reviews or manages, so an
    annotator cannot learn hidden fields (model names, gold items) by filtering on them."""

    reviewer_only: tuple[str, ...] = ()
    project_path = "project_id"

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        used = any(self.form.cleaned_data.get(name) not in (None, "") for name in self.reviewer_only)
        if not used or self.request is None:
            return queryset
        access = project_access_for_user(self.request.user)
        if access.admin:
            return queryset
        review_ids = [pid for pid in access.roles if access.can_review(pid)]
        return queryset.filter(**{f"{self.project_path}__in": review_ids})


class HidesFromAnnotators(serializers.ModelSerializer):
    """Drops ``Meta.reviewer_fields`` from the output unless the user reviews the object's project."""

    def project_id_of(self, instance) -> int:
        return instance.project_id

    def can_review(self, instance) -> bool:
        access = self.context.get("access")
        return bool(access and access.can_review(self.project_id_of(instance)))

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self.can_review(instance):
            for name in getattr(self.Meta, "reviewer_fields", ()):
                data.pop(name, None)
        return data


class PromptFilter(django_filters.FilterSet):
    project = IdFilter(field_name="project_id")
    external_id = django_filters.CharFilter()
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Prompt
        fields = ["project", "external_id", "created_after", "created_before"]


@extend_schema_view(
    list=extend_schema(summary="Prompts of your projects"),
    retrieve=extend_schema(summary="One prompt"),
)
class PromptViewSet(
    ProjectAccessMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Prompts of the projects you can see. Adding one needs token scope `train`."""

    queryset = Prompt.objects.none()
    filterset_class = PromptFilter

    class InputSerializer(serializers.Serializer):
        project = serializers.IntegerField()
        text = serializers.CharField(help_text="The prompt, or a rendering of the chat messages.")
        messages = serializers.ListField(
            child=serializers.DictField(),
            required=False,
            allow_null=True,
            help_text='[{"role", "content"}, ...]',
        )
        metadata = serializers.DictField(required=False)
        external_id = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")

        class Meta:
            ref_name = "PromptInput"

    class OutputSerializer(serializers.ModelSerializer):
        """A prompt: text, or chat messages with the text as a rendering."""

        class Meta:
            model = Prompt
            fields = ["id", "project", "text", "messages", "metadata", "external_id", "created_at"]
            ref_name = "Prompt"

    def get_queryset(self):
        return prompt_list_for_user(user=self.request.user)

    def get_serializer_class(self):
        return self.InputSerializer if self.action == "create" else self.OutputSerializer

    @extend_schema(
        summary="Add a prompt (the project's engineers, admins)",
        request=InputSerializer,
        responses={201: OutputSerializer},
    )
    def create(self, request, *args, **kwargs):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        project = self.visible_project(data.pop("project"), manage=True)
        prompt = prompt_create(project=project, **data)
        return Response(self.OutputSerializer(prompt).data, status=status.HTTP_201_CREATED)


class CandidateFilter(ReviewerOnlyFilterSet):
    reviewer_only = ("model_name",)
    project_path = "prompt__project_id"

    project = IdFilter(field_name="prompt__project_id")
    prompt = IdFilter(field_name="prompt_id")
    model_name = django_filters.CharFilter()

    class Meta:
        model = Candidate
        fields = ["project", "prompt", "model_name"]


@extend_schema_view(
    list=extend_schema(summary="Candidate responses in your projects"),
    retrieve=extend_schema(summary="One candidate response"),
)
class CandidateViewSet(
    ProjectAccessMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Candidate responses. Model names and generation parameters are hidden from annotators."""

    queryset = Candidate.objects.none()
    filterset_class = CandidateFilter

    class InputSerializer(serializers.Serializer):
        prompt = serializers.IntegerField()
        text = serializers.CharField()
        model_name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
        generation_params = serializers.DictField(required=False)

        class Meta:
            ref_name = "CandidateInput"

    class OutputSerializer(HidesFromAnnotators):
        """A candidate response to a prompt."""

        model_name = serializers.CharField(required=False, help_text="Reviewers, engineers and admins only.")
        generation_params = serializers.JSONField(
            required=False, help_text="Reviewers, engineers and admins only."
        )

        class Meta:
            model = Candidate
            fields = ["id", "prompt", "text", "model_name", "generation_params", "created_at"]
            reviewer_fields = ("model_name", "generation_params")
            ref_name = "Candidate"

        def project_id_of(self, instance) -> int:
            return instance.prompt.project_id

    def get_queryset(self):
        return candidate_list_for_user(user=self.request.user)

    def get_serializer_class(self):
        return self.InputSerializer if self.action == "create" else self.OutputSerializer

    @extend_schema(
        summary="Add a candidate response to a prompt (the project's engineers, admins)",
        request=InputSerializer,
        responses={201: OutputSerializer},
    )
    def create(self, request, *args, **kwargs):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        prompt = prompt_list_for_user(user=request.user).filter(pk=data.pop("prompt")).first()
        if prompt is None:
            raise serializers.ValidationError({"prompt": ["No such prompt in your projects."]})
        self.require_manage(prompt.project_id)
        candidate = candidate_create(prompt=prompt, **data)
        body = self.OutputSerializer(candidate, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)


class TaskFilter(ReviewerOnlyFilterSet):
    # Status is hidden too: gold items stay open past k while standard tasks close at k, so listing the
    # open tasks after judging one would tell an annotator which of their tasks were gold.
    reviewer_only = ("kind", "status")

    project = IdFilter(field_name="project_id")
    prompt = IdFilter(field_name="prompt_id")
    status = django_filters.ChoiceFilter(
        choices=TaskStatus.choices, help_text="Searches only projects you review."
    )
    kind = django_filters.ChoiceFilter(
        choices=TaskKind.choices, help_text="Searches only projects you review."
    )
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = ComparisonTask
        fields = ["project", "prompt", "status", "kind", "created_after", "created_before"]


class TaskPromptSerializer(serializers.ModelSerializer):
    """The prompt of a task."""

    class Meta:
        model = Prompt
        fields = ["id", "text", "messages"]
        ref_name = "TaskPrompt"


class TaskCandidateSerializer(serializers.ModelSerializer):
    """One side of a task."""

    model_name = serializers.CharField(required=False, help_text="Reviewers, engineers and admins only.")

    class Meta:
        model = Candidate
        fields = ["id", "text", "model_name"]
        ref_name = "TaskCandidate"


@extend_schema_view(
    list=extend_schema(summary="Comparison tasks in your projects"),
    retrieve=extend_schema(summary="One comparison task"),
)
class TaskViewSet(
    ProjectAccessMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Comparison tasks: a prompt and two candidates in a stored A/B order. Annotators see them blind (no
    model names, kinds, statuses, judgment counts or gold answers)."""

    queryset = ComparisonTask.objects.none()
    filterset_class = TaskFilter

    class InputSerializer(serializers.Serializer):
        project = serializers.IntegerField()
        candidate_a = serializers.IntegerField()
        candidate_b = serializers.IntegerField()
        kind = serializers.ChoiceField(choices=TaskKind.choices, default=TaskKind.STANDARD)
        # A plain string (checked by the service) so the schema keeps one enum for judgment choices.
        gold_choice = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            help_text="A, B, tie or both_bad; needed for gold tasks.",
        )
        gold_explanation = serializers.CharField(required=False, allow_blank=True, default="")
        priority = serializers.IntegerField(
            required=False, default=0, min_value=-DB_INT_MAX, max_value=DB_INT_MAX
        )
        metadata = serializers.DictField(required=False)
        randomize_order = serializers.BooleanField(
            default=True, help_text="Shuffle which candidate is shown as A (a gold answer follows the swap)."
        )

        class Meta:
            ref_name = "TaskInput"

    class OutputSerializer(HidesFromAnnotators):
        """A comparison task with its prompt and both candidates (A first)."""

        prompt = TaskPromptSerializer()
        candidate_a = TaskCandidateSerializer()
        candidate_b = TaskCandidateSerializer()
        status = serializers.ChoiceField(
            choices=TaskStatus.choices, required=False, help_text="Reviewers, engineers and admins only."
        )
        judgment_count = serializers.IntegerField(
            required=False, help_text="Reviewers, engineers and admins only."
        )
        kind = serializers.CharField(required=False, help_text="Reviewers, engineers and admins only.")
        gold_choice = serializers.CharField(required=False, help_text="Reviewers, engineers and admins only.")
        gold_explanation = serializers.CharField(
            required=False, help_text="Reviewers, engineers and admins only."
        )
        repeat_of = serializers.IntegerField(
            source="repeat_of_id",
            required=False,
            allow_null=True,
            help_text="Reviewers, engineers and admins only.",
        )
        metadata = serializers.JSONField(required=False, help_text="Reviewers, engineers and admins only.")

        class Meta:
            model = ComparisonTask
            fields = [
                "id",
                "project",
                "prompt",
                "candidate_a",
                "candidate_b",
                "status",
                "judgment_count",
                "priority",
                "created_at",
                "kind",
                "gold_choice",
                "gold_explanation",
                "repeat_of",
                "metadata",
            ]
            # Status and judgment_count too: gold items stay open with more judgments than k, so
            # they would tell an annotator which tasks are gold.
            reviewer_fields = (
                "status",
                "judgment_count",
                "kind",
                "gold_choice",
                "gold_explanation",
                "repeat_of",
                "metadata",
            )
            ref_name = "Task"

        def to_representation(self, instance):
            data = super().to_representation(instance)
            if not self.can_review(instance):
                for side in ("candidate_a", "candidate_b"):
                    data[side].pop("model_name", None)
            return data

    def get_queryset(self):
        return task_list_for_user(user=self.request.user)

    def get_serializer_class(self):
        return self.InputSerializer if self.action == "create" else self.OutputSerializer

    @extend_schema(
        summary="Create a comparison task (the project's engineers, admins)",
        request=InputSerializer,
        responses={201: OutputSerializer},
    )
    def create(self, request, *args, **kwargs):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        project = self.visible_project(data.pop("project"), manage=True)
        candidates = candidate_list_for_user(user=request.user).filter(prompt__project=project)
        errors = {}
        for side in ("candidate_a", "candidate_b"):
            data[side] = candidates.filter(pk=data[side]).first()
            if data[side] is None:
                errors[side] = ["No such candidate in this project."]
        if errors:
            raise serializers.ValidationError(errors)
        task = task_create(project=project, **data)
        task = self.get_queryset().get(pk=task.pk)
        body = self.OutputSerializer(task, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)
