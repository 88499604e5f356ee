"""Quality JSON API: the numbers behind the quality and leaderboard pages, and flag review.

Tokens need the ``export`` scope; users must be reviewers, engineers or admins of the project. The
project-wide numbers are the stored quality report (``report`` says when it was computed, over how many
judgments, and how many arrived since); ``POST .../quality/recompute`` queues the job that refreshes it.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.auth import EXPORT_SCOPES, TokenScopes, visible_projects
from annotation.models import AnnotatorFlag, FlagStatus, Project
from annotation.selectors.quality import annotator_detail, flag_list, quality_settings, report_annotator_rows
from annotation.services.quality import can_review_quality, flag_clear, flags_refresh
from annotation.services.quality_report import quality_report_for_page, quality_report_request

MAX_BOOTSTRAP = 5000


class FlagOutputSerializer(serializers.ModelSerializer):
    annotator_username = serializers.CharField(source="annotator.username", read_only=True)
    cleared_by_username = serializers.CharField(
        source="cleared_by.username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = AnnotatorFlag
        fields = [
            "id",
            "project",
            "annotator",
            "annotator_username",
            "reason",
            "evidence",
            "status",
            "created_at",
            "cleared_by",
            "cleared_by_username",
            "cleared_at",
            "clear_note",
        ]


class QualityApi(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes]
    read_scopes = write_scopes = EXPORT_SCOPES

    def project(self, project_id: int) -> Project:
        project = get_object_or_404(visible_projects(self.request.user), pk=project_id)
        if not can_review_quality(self.request.user, project):
            raise PermissionDenied("Quality data is for reviewers, engineers and admins of the project.")
        return project


class BootstrapInput(serializers.Serializer):
    n_boot = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_BOOTSTRAP,
        help_text="Accepted for compatibility and ignored: the numbers come from the stored quality report,"
        " computed with the project's quality_settings.bootstrap_samples (returned as n_boot).",
    )


def _report(project: Project, sections: tuple[str, ...]):
    """The stored report (those sections) and its freshness block (``None`` fields before the first one)."""
    view = quality_report_for_page(project, sections=sections)
    freshness = (
        view.as_dict()
        if view
        else {"computed_at": None, "judgment_count": 0, "new_judgments_since": None, "duration_ms": 0}
    )
    return view, (view.payload if view else {}), freshness


class ProjectQualityApi(QualityApi):
    @extend_schema(parameters=[BootstrapInput], responses={200: dict})
    def get(self, request, project_id: int):
        """Agreement (project and per import batch), per-annotator statistics, reliability and thresholds, from
        the stored quality report (``report``: when, over how many judgments, how many new since)."""
        project = self.project(project_id)
        BootstrapInput(data=request.query_params).is_valid(raise_exception=True)
        view, payload, freshness = _report(project, ("n_boot", "agreement", "annotator_table"))
        table = payload.get("annotator_table", {})
        return Response(
            {
                "project": project.pk,
                "report": freshness,
                "n_boot": payload.get("n_boot"),
                "settings": quality_settings(project).as_dict(),
                "agreement": payload.get("agreement"),
                "project_median_time_ms": table.get("project_median_time_ms"),
                "annotators": report_annotator_rows(view, project) if view else [],
            }
        )


class QualityRecomputeApi(QualityApi):
    @extend_schema(request=None, responses={202: dict})
    def post(self, request, project_id: int):
        """Queue the quality job for this project (statistics, reliabilities, leaderboard, flag rules).
        ``queued`` is false when a recompute asked for earlier is still on its way."""
        project = self.project(project_id)
        queued = quality_report_request(project=project, user=request.user)
        return Response({"project": project.pk, "queued": queued}, status=status.HTTP_202_ACCEPTED)


class AnnotatorQualityApi(QualityApi):
    @extend_schema(responses={200: dict})
    def get(self, request, project_id: int, annotator_id: int):
        """One annotator's statistics, drift test, reliability, times and flags."""
        project = self.project(project_id)
        detail = annotator_detail(project, annotator_id)
        if detail is None:
            return Response(
                {
                    "error": {
                        "code": "not_found",
                        "message": "This annotator has no judgments in the project.",
                    }
                },
                status=status.HTTP_404_NOT_FOUND,
            )
        flags = FlagOutputSerializer(flag_list(project=project, annotator_id=annotator_id), many=True).data
        return Response({**detail, "flags": flags})


class ReliabilityApi(QualityApi):
    @extend_schema(responses={200: dict})
    def get(self, request, project_id: int):
        """Dawid-Skene reliability per annotator id (what snapshots weight or drop by), from the stored report."""
        project = self.project(project_id)
        _, payload, freshness = _report(project, ("reliability",))
        return Response(
            {"project": project.pk, "report": freshness, "reliability": payload.get("reliability", {})}
        )


class LeaderboardApi(QualityApi):
    class InputSerializer(BootstrapInput):
        include_quarantined = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        parameters=[InputSerializer],
        responses={200: dict},
    )
    def get(self, request, project_id: int):
        """Bradley-Terry ratings (Elo-like scale) with bootstrap intervals, win-rate matrix and counts, from the
        stored quality report."""
        project = self.project(project_id)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        key = (
            "leaderboard_with_quarantined" if params.validated_data["include_quarantined"] else "leaderboard"
        )
        _, payload, freshness = _report(project, (key,))
        board = payload.get(key) or {
            "n_comparisons": 0,
            "models": [],
            "order": [],
            "win_rate": [],
            "pair_games": [],
        }
        return Response({"project": project.pk, "report": freshness, **board})


class FlagListApi(QualityApi):
    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=FlagStatus.choices, required=False)

    @extend_schema(
        parameters=[InputSerializer],
        responses={200: FlagOutputSerializer(many=True)},
    )
    def get(self, request, project_id: int):
        project = self.project(project_id)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        flags = flag_list(project=project, status=params.validated_data.get("status"))
        return Response(FlagOutputSerializer(flags, many=True).data)


class FlagsRefreshApi(QualityApi):
    @extend_schema(request=None, responses={201: FlagOutputSerializer(many=True)})
    def post(self, request, project_id: int):
        """Run the flag rules now; returns the flags this run opened."""
        project = self.project(project_id)
        created = flags_refresh(project=project)
        return Response(FlagOutputSerializer(created, many=True).data, status=status.HTTP_201_CREATED)


class FlagClearApi(QualityApi):
    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={200: FlagOutputSerializer})
    def post(self, request, flag_id: int):
        """Clear an open flag after review (lifts the quarantine when it was the annotator's last one)."""
        flag = get_object_or_404(AnnotatorFlag, pk=flag_id, project__in=visible_projects(request.user))
        self.project(flag.project_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        flag = flag_clear(flag=flag, reviewer=request.user, note=data.validated_data["note"])
        return Response(FlagOutputSerializer(flag).data)
