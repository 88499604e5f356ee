"""API routes for training runs and the reward-model registry."""

from django.urls import path

from training.api import runs

urlpatterns = [
    path("runs/", runs.RunListCreateApi.as_view(), name="training-run-list"),
    path("runs/<int:run_id>/", runs.RunDetailApi.as_view(), name="training-run-detail"),
    path("runs/<int:run_id>/live/", runs.RunLiveApi.as_view(), name="training-run-live"),
    path("runs/<int:run_id>/metrics/", runs.RunMetricsApi.as_view(), name="training-run-metrics"),
    path("runs/<int:run_id>/cancel/", runs.RunCancelApi.as_view(), name="training-run-cancel"),
    path("runs/<int:run_id>/retry/", runs.RunRetryApi.as_view(), name="training-run-retry"),
    path("reward-models/", runs.RewardModelListApi.as_view(), name="reward-model-list"),
    path("reward-models/<int:model_id>/", runs.RewardModelDetailApi.as_view(), name="reward-model-detail"),
    path(
        "reward-models/<int:model_id>/evaluate/",
        runs.RewardModelEvaluateApi.as_view(),
        name="reward-model-evaluate",
    ),
    path(
        "reward-models/<int:model_id>/live-agreement/",
        runs.RewardModelLiveAgreementApi.as_view(),
        name="reward-model-live-agreement",
    ),
    path(
        "reward-models/<int:model_id>/promote/",
        runs.RewardModelPromoteApi.as_view(),
        name="reward-model-promote",
    ),
    path(
        "projects/<int:project_id>/reward-model/",
        runs.ProjectActiveRewardModelApi.as_view(),
        name="project-active-reward-model",
    ),
    path("projects/<int:project_id>/retrain/", runs.ProjectRetrainApi.as_view(), name="project-retrain"),
    path(
        "projects/<int:project_id>/task-scoring/",
        runs.ProjectTaskScoringApi.as_view(),
        name="project-task-scoring",
    ),
    path(
        "projects/<int:project_id>/task-scoring/<int:scoring_job_id>/cancel/",
        runs.ProjectTaskScoringCancelApi.as_view(),
        name="project-task-scoring-cancel",
    ),
]
