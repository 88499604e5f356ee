"""API routes of active sampling on the reward-model side: the task-scoring job (the active model's
predictions and priorities for a project's open tasks) and the model's live agreement with new votes."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from annotation.auth import visible_projects
from training.models import LiveAgreement, TaskScoringJob
from training.rewardmodels.api import TrainApi
from training.rewardmodels.selectors import (
    live_agreement_history,
    reward_model_active,
    reward_model_live_agreement,
    reward_model_test_accuracy,
)
from training.rewardmodels.task_scoring import task_scoring_cancel, task_scoring_start


class TaskScoringOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = TaskScoringJob
        fields = [
            "id",
            "project",
            "reward_model",
            "status",
            "total",
            "scored",
            "cancel_requested",
            "message",
            "created_at",
            "finished_at",
        ]
        ref_name = "TaskScoringJob"


class ProjectTaskScoringApi(TrainApi):
    """Score the project's open tasks with its active reward model (uncertainty-first serving); GET: the
    latest job and its progress (``job`` null before the first) and whether an active model exists."""

    @extend_schema(responses={200: dict})
    def get(self, request, project_id: int):
        project = get_object_or_404(visible_projects(request.user), pk=project_id)
        job = TaskScoringJob.objects.filter(project=project).first()
        return Response(
            {
                "job": TaskScoringOutputSerializer(job).data if job else None,
                "has_active_model": reward_model_active(project) is not None,
            }
        )

    @extend_schema(request=None, responses={202: TaskScoringOutputSerializer})
    def post(self, request, project_id: int):
        project = get_object_or_404(visible_projects(request.user), pk=project_id)
        job = task_scoring_start(project=project, user=request.user)
        return Response(TaskScoringOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ProjectTaskScoringCancelApi(TrainApi):
    @extend_schema(request=None, responses={200: TaskScoringOutputSerializer})
    def post(self, request, project_id: int, scoring_job_id: int):
        project = get_object_or_404(visible_projects(request.user), pk=project_id)
        job = get_object_or_404(TaskScoringJob, project=project, pk=scoring_job_id)
        return Response(TaskScoringOutputSerializer(task_scoring_cancel(job=job)).data)


class RewardModelLiveAgreementApi(TrainApi):
    """The model's accuracy on human votes made after its snapshot (all, and the random share only), computed
    now; ``baseline`` is its test accuracy and ``history`` the periodic job's stored measurements (newest
    first, at most 50)."""

    class MeasurementSerializer(serializers.ModelSerializer):
        drop = serializers.FloatField(allow_null=True, read_only=True, help_text="baseline - accuracy")

        class Meta:
            model = LiveAgreement
            fields = [
                "computed_at",
                "n",
                "accuracy",
                "low",
                "high",
                "random_n",
                "random_accuracy",
                "baseline",
            ]
            fields += ["drop"]
            ref_name = "LiveAgreementMeasurement"

    @extend_schema(responses={200: dict})
    def get(self, request, model_id: int):
        rm = self.get_reward_model(model_id)
        history = live_agreement_history(rm, limit=50)
        return Response(
            {
                **reward_model_live_agreement(rm),
                "baseline": reward_model_test_accuracy(rm),
                "history": self.MeasurementSerializer(history, many=True).data,
            }
        )
