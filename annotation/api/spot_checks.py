"""Spot-check verdict API for reviewers (token scope ``annotate``; the project's reviewers): the next
spot-checked sample to judge, a verdict per sample (fine, reward hacking, length inflation, empty or template
answer, unsafe, hallucination), and the project's verdicts with counts (filter ``run_id``: one policy run's
samples)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from annotation.api.assignment import AnnotateView
from annotation.api.errors import error_response
from annotation.auth import visible_projects
from annotation.models import SPOT_CHECK_NOTE_MAX, Project, SpotCheckVerdict, SpotCheckVerdictChoice
from annotation.selectors.projects import reviewer_projects
from annotation.selectors.spot_checks import (
    spot_check_next_sample,
    spot_check_sample_run_id,
    spot_check_samples_left,
    spot_check_task_of,
    spot_check_verdict_list,
)
from annotation.services.spot_checks import spot_check_verdict_submit

ID_MAX = 2**63 - 1


class SpotCheckVerdictSerializer(serializers.ModelSerializer):
    reviewer_username = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta:
        model = SpotCheckVerdict
        fields = [
            "id",
            "project",
            "task",
            "candidate",
            "reviewer",
            "reviewer_username",
            "verdict",
            "note",
            "run_id",
            "created_at",
            "updated_at",
        ]


class SpotCheckView(AnnotateView):
    def reviewed_project(self, project_id: int) -> Project:
        """404 for a project the user cannot see, 403 for one they do not review."""
        project = get_object_or_404(visible_projects(self.request.user), pk=project_id)
        if not reviewer_projects(self.request.user).filter(pk=project.pk).exists():
            raise exceptions.PermissionDenied(
                "Only this project's reviewers give spot-check verdicts.", code="role_required"
            )
        return project


class SpotCheckNextApi(SpotCheckView):
    class FilterSerializer(serializers.Serializer):
        after = serializers.IntegerField(
            required=False,
            default=0,
            min_value=0,
            max_value=ID_MAX,
            help_text="Serve a sample after this id.",
        )

    @extend_schema(
        summary="The next spot-checked sample this reviewer has not judged (null when none is left)",
        parameters=[FilterSerializer],
        responses={200: dict},
    )
    def get(self, request, project_id: int):
        project = self.reviewed_project(project_id)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        sample = spot_check_next_sample(
            project=project, reviewer=request.user, after=filters.validated_data["after"]
        )
        if sample is None:
            return Response({"sample": None, "left": 0})
        task = spot_check_task_of(project=project, candidate=sample)
        meta = (task.metadata or {}).get("spot_check", {}) if task else {}
        side = "a" if task and task.candidate_a_id == sample.pk else "b"
        return Response(
            {
                "sample": {
                    "candidate": sample.pk,
                    "task": task.pk if task else None,
                    "prompt": {"text": sample.prompt.text, "messages": sample.prompt.messages},
                    "response": sample.text,
                    "reward": meta.get(f"reward_{side}"),
                    "run_id": spot_check_sample_run_id(sample, task),
                },
                "left": spot_check_samples_left(project=project, reviewer=request.user),
                "verdicts": [{"value": c.value, "label": c.label} for c in SpotCheckVerdictChoice],
            }
        )


class SpotCheckVerdictListCreateApi(SpotCheckView, ListAPIView):
    """The project's spot-check verdicts (filter ``run_id``), newest first; POST records this reviewer's
    verdict on one sample (201), or changes it (200)."""

    serializer_class = SpotCheckVerdictSerializer

    class FilterSerializer(serializers.Serializer):
        run_id = serializers.IntegerField(required=False, min_value=0, max_value=ID_MAX)

    class InputSerializer(serializers.Serializer):
        candidate = serializers.IntegerField(
            min_value=1, max_value=ID_MAX, help_text="The sample (candidate id)."
        )
        verdict = serializers.ChoiceField(choices=SpotCheckVerdictChoice.choices)
        note = serializers.CharField(
            required=False, default="", allow_blank=True, max_length=SPOT_CHECK_NOTE_MAX
        )

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI generator: no request, no project
            return SpotCheckVerdict.objects.none()
        project = self.reviewed_project(self.kwargs["project_id"])
        filters = self.FilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return spot_check_verdict_list(project=project, run_id=filters.validated_data.get("run_id"))

    @extend_schema(parameters=[FilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=InputSerializer, responses={201: SpotCheckVerdictSerializer, 200: SpotCheckVerdictSerializer}
    )
    def post(self, request, project_id: int):
        project = self.reviewed_project(project_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            row, created = spot_check_verdict_submit(
                project=project,
                candidate_id=v["candidate"],
                reviewer=request.user,
                verdict=v["verdict"],
                note=v["note"],
            )
        except ValidationError as exc:
            fields = exc.message_dict
            field = next(iter(fields))
            return error_response(
                "invalid", f"{field}: {fields[field][0]}", status.HTTP_400_BAD_REQUEST, fields
            )
        return Response(
            SpotCheckVerdictSerializer(row).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
