"""Training-run and reward-model registry API for ML engineers (token scope ``train``; engineer or admin).

Runs: create a reward-model run (202, queued on the ``training`` queue), list, poll (status, progress, ETA,
latest metrics, log tail), metric series, cancel, retry. Registry: list/detail with evaluations, evaluate on
a snapshot split, promote through the gate (409 with the verdict when refused), the active model of a
project, and the retraining trigger.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.errors import error_response
from annotation.auth import MANAGE_SCOPES, HasRole, TokenScopes, visible_projects
from annotation.models import Project, Role
from training.access import ArtifactDirForAdmins
from training.datasets.selectors import snapshot_get
from training.models import (
    SEED_MAX,
    DatasetSnapshot,
    JobStatus,
    ModelEvaluation,
    RewardModel,
    TrainingRun,
)
from training.rewardmodels.registry import (
    PromotionGate,
    PromotionRefused,
    reward_model_evaluate,
    reward_model_promote,
)
from training.rewardmodels.selectors import (
    reward_model_active,
    reward_model_list,
)
from training.rewardmodels.services import retrain_check, reward_run_create, run_cancel, run_retry
from training.runs import run_list, run_live_state, run_metric_series


class TrainApi(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScopes, HasRole]
    read_scopes = write_scopes = MANAGE_SCOPES
    required_roles = (Role.ENGINEER, Role.ADMIN)

    def get_run(self, run_id: int) -> TrainingRun:
        run = run_list(projects=visible_projects(self.request.user)).filter(pk=run_id).first()
        if run is None:
            raise Http404("No such run.")
        return run

    def get_reward_model(self, model_id: int) -> RewardModel:
        rm = reward_model_list(projects=visible_projects(self.request.user)).filter(pk=model_id).first()
        if rm is None:
            raise Http404("No such reward model.")
        return rm

    def get_snapshot(self, snapshot_id: int) -> DatasetSnapshot:
        # The one snapshot rule: every project of the snapshot must be visible (not just one of them).
        snapshot = snapshot_get(user=self.request.user, snapshot_id=snapshot_id)
        if snapshot is None:
            raise Http404("No such snapshot.")
        return snapshot


class RunOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "kind",
            "project",
            "snapshot",
            "base_model",
            "config",
            "seed",
            "status",
            "status_reason",
            "step",
            "total_steps",
            "eta_seconds",
            "summary",
            "log_tail",
            "worker",
            "heartbeat_at",
            "cancel_requested",
            "retry_of",
            "celery_task_id",
            "created_at",
            "started_at",
            "finished_at",
        ]


class RunListCreateApi(TrainApi, ListAPIView):
    """List runs (filters: ``kind``, ``status``) or create a reward-model run."""

    serializer_class = RunOutputSerializer

    class InputSerializer(serializers.Serializer):
        snapshot_id = serializers.IntegerField()
        base_model = serializers.CharField(max_length=500)
        config = serializers.DictField(
            required=False,
            default=dict,
            help_text="Typed and strict: the reward run's settings (RewardRunConfig); a value of the wrong type or an unknown key is a 400 "
            "naming 'config.<path>' (docs/api.md).",
        )
        seed = serializers.IntegerField(required=False, default=42, min_value=0, max_value=SEED_MAX)

    def get_queryset(self):
        return run_list(
            projects=visible_projects(self.request.user),
            kind=self.request.query_params.get("kind"),
            status=self.request.query_params.get("status"),
        ).order_by("-id")

    @extend_schema(request=InputSerializer, responses={202: RunOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = self.get_snapshot(data.validated_data["snapshot_id"])
        try:
            run = reward_run_create(
                snapshot=snapshot,
                base_model=data.validated_data["base_model"],
                config=data.validated_data["config"],
                seed=data.validated_data["seed"],
                user=request.user,
            )
        except ValueError as exc:  # unknown config fields
            return error_response("invalid", str(exc), status.HTTP_400_BAD_REQUEST, {"config": [str(exc)]})
        return Response(RunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RunDetailApi(TrainApi):
    @extend_schema(responses=RunOutputSerializer)
    def get(self, request, run_id: int):
        return Response(RunOutputSerializer(self.get_run(run_id)).data)


class RunMetricsApi(TrainApi):
    """{metric: [[step, value], ...]}; ``after_step`` returns only newer points (for polling)."""

    @extend_schema(responses=dict)
    def get(self, request, run_id: int):
        run = self.get_run(run_id)
        raw = request.query_params.get("after_step", "-1")
        try:
            after = int(raw)
        except ValueError:
            raise ValidationError({"after_step": [f"Must be a whole number, not {raw[:40]!r}."]}) from None
        return Response(
            {"run": run.pk, "status": run.status, "series": run_metric_series(run, after_step=after)}
        )


class RunLiveApi(TrainApi):
    @extend_schema(responses=dict)
    def get(self, request, run_id: int):
        return Response(run_live_state(self.get_run(run_id)))


class RunCancelApi(TrainApi):
    @extend_schema(request=None, responses={202: RunOutputSerializer})
    def post(self, request, run_id: int):
        run = self.get_run(run_id)
        if run.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return error_response(
                "conflict", f"run {run.pk} is already {run.status}", status.HTTP_409_CONFLICT
            )
        return Response(RunOutputSerializer(run_cancel(run=run)).data, status=status.HTTP_202_ACCEPTED)


class RunRetryApi(TrainApi):
    @extend_schema(request=None, responses={202: RunOutputSerializer})
    def post(self, request, run_id: int):
        run = run_retry(run=self.get_run(run_id), user=request.user)
        return Response(RunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class EvaluationOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelEvaluation
        fields = ["id", "snapshot", "split", "metrics", "created_at"]


class RewardModelOutputSerializer(ArtifactDirForAdmins, serializers.ModelSerializer):
    class Meta:
        model = RewardModel
        fields = [
            "id",
            "project",
            "version",
            "run",
            "snapshot",
            "base_model",
            "artifact_dir",
            "card",
            "reward_mean",
            "reward_std",
            "max_length",
            "is_active",
            "created_at",
        ]
        extra_kwargs = {
            "artifact_dir": {"help_text": "Server path of the model files; shown to admins only."}
        }


class RewardModelListApi(TrainApi, ListAPIView):
    """Registered reward models (filter: ``project``)."""

    serializer_class = RewardModelOutputSerializer

    def get_queryset(self):
        qs = reward_model_list(projects=visible_projects(self.request.user)).order_by("-id")
        project = self.request.query_params.get("project")
        return qs.filter(project_id=project) if project else qs


class RewardModelDetailApi(TrainApi):
    class OutputSerializer(RewardModelOutputSerializer):
        evaluations = EvaluationOutputSerializer(many=True, read_only=True)

        class Meta(RewardModelOutputSerializer.Meta):
            fields = [*RewardModelOutputSerializer.Meta.fields, "evaluations"]

    @extend_schema(responses=OutputSerializer)
    def get(self, request, model_id: int):
        rm = self.get_reward_model(model_id)
        return Response(self.OutputSerializer(rm, context={"request": request}).data)


class RewardModelEvaluateApi(TrainApi):
    """Evaluate a registered model on any snapshot split (scored in the request; small splits)."""

    class InputSerializer(serializers.Serializer):
        snapshot_id = serializers.IntegerField()
        split = serializers.ChoiceField(choices=["train", "validation", "test"], default="test")

    @extend_schema(request=InputSerializer, responses={201: EvaluationOutputSerializer})
    def post(self, request, model_id: int):
        rm = self.get_reward_model(model_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = self.get_snapshot(data.validated_data["snapshot_id"])
        if snapshot.status != JobStatus.SUCCEEDED:
            return error_response("conflict", "the snapshot is not ready", status.HTTP_409_CONFLICT)
        evaluation = reward_model_evaluate(
            reward_model=rm, snapshot=snapshot, split=data.validated_data["split"]
        )
        return Response(EvaluationOutputSerializer(evaluation).data, status=status.HTTP_201_CREATED)


class RewardModelPromoteApi(TrainApi):
    """Promote through the gate; ``force`` with a ``reason`` overrides a failed gate (recorded)."""

    class InputSerializer(serializers.Serializer):
        min_accuracy = serializers.FloatField(required=False, default=PromotionGate.min_accuracy)
        tolerance = serializers.FloatField(required=False, default=PromotionGate.tolerance)
        force = serializers.BooleanField(required=False, default=False)
        reason = serializers.CharField(required=False, default="", allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        promotion_id = serializers.IntegerField()
        reward_model = serializers.IntegerField()
        previous = serializers.IntegerField(allow_null=True)
        forced = serializers.BooleanField()
        gate = serializers.DictField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request, model_id: int):
        rm = self.get_reward_model(model_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            promotion = reward_model_promote(
                reward_model=rm,
                user=request.user,
                gate=PromotionGate(min_accuracy=v["min_accuracy"], tolerance=v["tolerance"]),
                force=v["force"],
                reason=v["reason"],
            )
        except PromotionRefused as exc:
            response = error_response("gate_failed", "; ".join(exc.gate["reasons"]), status.HTTP_409_CONFLICT)
            response.data["error"]["gate"] = exc.gate
            return response
        return Response(
            self.OutputSerializer(
                {
                    "promotion_id": promotion.pk,
                    "reward_model": rm.pk,
                    "previous": promotion.previous_id,
                    "forced": promotion.forced,
                    "gate": promotion.gate,
                }
            ).data
        )


class ProjectActiveRewardModelApi(TrainApi):
    required_roles = None  # any member may ask which model scores their project

    @extend_schema(responses=RewardModelOutputSerializer)
    def get(self, request, project_id: int):
        project = get_object_or_404(visible_projects(request.user), pk=project_id)
        rm = reward_model_active(project)
        if rm is None:
            raise Http404("This project has no active reward model.")
        return Response(RewardModelOutputSerializer(rm, context={"request": request}).data)


class ProjectRetrainApi(TrainApi):
    """Retraining trigger: builds a snapshot and queues a run when ``force`` or enough new judgments."""

    class InputSerializer(serializers.Serializer):
        threshold = serializers.IntegerField(required=False, min_value=1, allow_null=True, default=None)
        force = serializers.BooleanField(required=False, default=True)

    @extend_schema(request=InputSerializer, responses={202: RunOutputSerializer, 200: dict})
    def post(self, request, project_id: int):
        project: Project = get_object_or_404(visible_projects(request.user), pk=project_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = retrain_check(
            project=project,
            threshold=data.validated_data["threshold"],
            user=request.user,
            force=data.validated_data["force"],
        )
        if run is None:
            return Response({"triggered": False})
        return Response(RunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)
