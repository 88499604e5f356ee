"""Projects and their members: list/retrieve for members, create for engineers, change for the project's
engineers and admins."""

from __future__ import annotations

import dataclasses

import django_filters
from django.conf import settings
from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from annotation.api.core.base import ProjectAccessMixin
from annotation.auth import MANAGE_SCOPES, READ_SCOPES, has_role
from annotation.models import Project, ProjectMembership, Role, validate_ranking_length
from annotation.quality.flags import QualitySettings
from annotation.selectors.projects import ROLE_RANK, membership_list, project_list_for_user
from annotation.services.projects import (
    PROJECT_EDITABLE_FIELDS,
    membership_add,
    membership_remove,
    project_create,
    project_delete,
    project_update,
)


def _quality_settings_schema() -> dict:
    """The keys ``Project.quality_settings`` accepts (``QualitySettings``' fields, non-negative numbers;
    whole numbers where the default is one) and nothing else, as ``validate_quality_settings`` checks."""
    defaults = QualitySettings()
    properties = {
        f.name: {"type": "integer" if type(getattr(defaults, f.name)) is int else "number", "minimum": 0}
        for f in dataclasses.fields(QualitySettings)
    }
    return {"type": "object", "properties": properties, "additionalProperties": False}


@extend_schema_field(_quality_settings_schema())
class QualitySettingsField(serializers.DictField):
    """``quality_settings`` as the schema states it; the model's validator refuses anything else."""


class ProjectFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Project
        fields = ["name"]


@extend_schema_view(
    list=extend_schema(summary="Projects you are a member of (all projects for admins)"),
    retrieve=extend_schema(summary="One project"),
    create=extend_schema(summary="Create a project (engineers, admins); you become an engineer member"),
    update=extend_schema(summary="Replace a project's settings (the project's engineers, admins)"),
    partial_update=extend_schema(summary="Change some project settings (the project's engineers, admins)"),
    destroy=extend_schema(summary="Delete a project and everything in it (the project's engineers, admins)"),
)
class ProjectViewSet(ProjectAccessMixin, viewsets.ModelViewSet):
    """Annotation projects and their members. Writes need token scope `train`."""

    queryset = Project.objects.none()
    filterset_class = ProjectFilter
    action_scopes = {"members": READ_SCOPES, "add_member": MANAGE_SCOPES, "remove_member": MANAGE_SCOPES}

    class InputSerializer(serializers.ModelSerializer):
        gold_rate = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
        swap_repeat_rate = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
        random_share = serializers.FloatField(
            min_value=0.0,
            max_value=1.0,
            required=False,
            help_text="Share of tasks served at random under serving order 'mix' (and active model pairing).",
        )
        overlap_k = serializers.IntegerField(min_value=1, max_value=100, required=False)
        extra_criteria = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
        quality_settings = QualitySettingsField(required=False)
        # The model's rule (validate_ranking_length), with its bounds stated in the schema too.
        max_ranking_length = serializers.IntegerField(
            required=False,
            validators=[validate_ranking_length],
            min_value=2,
            max_value=settings.PREFLAB_MAX_RANKING_LENGTH,
            help_text="Most candidates one K-way ranking may order (at most PREFLAB_MAX_RANKING_LENGTH).",
        )
        retrain_after_judgments = serializers.IntegerField(
            min_value=0,
            max_value=10_000_000,
            required=False,
            allow_null=True,
            help_text="Automatic RM retraining after this many new judgments; null: server default; 0: off.",
        )
        retrain_agreement_drop = serializers.FloatField(
            min_value=0,
            max_value=1,
            required=False,
            allow_null=True,
            help_text="Automatic RM retraining when the active model's live agreement with new votes falls "
            "this far below its test accuracy (needs PREFLAB_LIVE_AGREEMENT_MIN_VOTES votes); null or 0: off.",
        )

        class Meta:
            model = Project
            fields = list(PROJECT_EDITABLE_FIELDS)
            ref_name = "ProjectInput"

    class OutputSerializer(serializers.ModelSerializer):
        """A project's settings, plus the caller's role in it."""

        my_role = serializers.SerializerMethodField(help_text="Your role in this project.")

        class Meta:
            model = Project
            fields = ["id", *PROJECT_EDITABLE_FIELDS, "created_by", "created_at", "my_role"]
            ref_name = "Project"

        @extend_schema_field(OpenApiTypes.STR)
        def get_my_role(self, project: Project) -> str | None:
            access = self.context.get("access")
            return access.role(project.pk) if access else None

    class MemberInputSerializer(serializers.Serializer):
        user_id = serializers.IntegerField(required=False, help_text="The user's id (or give username).")
        username = serializers.CharField(required=False, help_text="The user's username (or give user_id).")
        role = serializers.ChoiceField(choices=Role.choices, default=Role.ANNOTATOR)

        class Meta:
            ref_name = "MemberInput"

        def validate(self, attrs):
            if ("user_id" in attrs) == ("username" in attrs):
                raise serializers.ValidationError({"user_id": ["Give exactly one of user_id or username."]})
            return attrs

    class MemberOutputSerializer(serializers.ModelSerializer):
        user_id = serializers.IntegerField(source="user.id")
        username = serializers.CharField(source="user.username")

        class Meta:
            model = ProjectMembership
            fields = ["user_id", "username", "role", "created_at"]
            ref_name = "Member"

    def get_queryset(self):
        return project_list_for_user(user=self.request.user)

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return self.InputSerializer
        if self.action == "members":
            return self.MemberOutputSerializer
        if self.action == "add_member":
            return self.MemberInputSerializer
        return self.OutputSerializer

    def _output(self, project: Project, http_status: int = status.HTTP_200_OK) -> Response:
        return Response(
            self.OutputSerializer(project, context=self.get_serializer_context()).data, http_status
        )

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def create(self, request, *args, **kwargs):
        if not has_role(request.user, Role.ENGINEER):
            raise exceptions.PermissionDenied(
                "Only engineers and admins can create projects.", code="role_required"
            )
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = project_create(created_by=request.user, **serializer.validated_data)
        return self._output(project, status.HTTP_201_CREATED)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def update(self, request, *args, **kwargs):
        project = self.get_object()
        self.require_manage(project.pk)
        serializer = self.InputSerializer(project, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        project = project_update(project=project, **serializer.validated_data)
        return self._output(project)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    def destroy(self, request, *args, **kwargs):
        project = self.get_object()
        self.require_manage(project.pk)
        project_delete(project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Members of a project (its reviewers, engineers, admins)",
        responses=MemberOutputSerializer(many=True),
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def members(self, request, pk=None):
        project = self.get_object()
        if not self.access.can_review(project.pk):
            raise exceptions.PermissionDenied(
                "Only reviewers, engineers and admins can list members.", code="role_required"
            )
        page = self.paginate_queryset(membership_list(project=project))
        return self.get_paginated_response(self.MemberOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Add a member or change a member's role (the project's engineers, admins)",
        request=MemberInputSerializer,
        responses={201: MemberOutputSerializer, 200: MemberOutputSerializer},
    )
    @members.mapping.post
    def add_member(self, request, pk=None):
        project = self.get_object()
        self.require_manage(project.pk)
        serializer = self.MemberInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if ROLE_RANK[data["role"]] > ROLE_RANK[self.access.role(project.pk)]:
            raise exceptions.PermissionDenied("You cannot grant a role above your own.", code="role_required")
        lookup = {"pk": data["user_id"]} if "user_id" in data else {"username": data["username"]}
        user = get_user_model().objects.filter(**lookup).first()
        if user is None:
            field = "user_id" if "user_id" in data else "username"
            raise exceptions.ValidationError({field: ["No such user."]})
        membership, created = membership_add(project=project, user=user, role=data["role"])
        body = self.MemberOutputSerializer(membership).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        summary="Remove a member (the project's engineers, admins); their judgments stay",
        parameters=[OpenApiParameter("user_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        request=None,
        responses={204: None},
    )
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<user_id>[0-9]+)", filterset_class=None)
    def remove_member(self, request, pk=None, user_id=None):
        project = self.get_object()
        self.require_manage(project.pk)
        user = get_user_model().objects.filter(pk=user_id).first()
        if user is None or not membership_remove(project=project, user=user):
            raise exceptions.NotFound("This user is not a member of the project.")
        return Response(status=status.HTTP_204_NO_CONTENT)
