"""API routes for training runs and the reward-model registry."""

from django.urls import path

from training.rewardmodels import api, api_active_sampling

urlpatterns = [
    path("runs/", api.RunListCreateApi.as_view(), name="training-run-list"),
    path("runs/<int:run_id>/", api.RunDetailApi.as_view(), name="training-run-detail"),
    path("runs/<int:run_id>/live/", api.RunLiveApi.as_view(), name="training-run-live"),
    path("runs/<int:run_id>/metrics/", api.RunMetricsApi.as_view(), name="training-run-metrics"),
    path("runs/<int:run_id>/cancel/", api.RunCancelApi.as_view(), name="training-run-cancel"),
    path("runs/<int:run_id>/retry/", api.RunRetryApi.as_view(), name="training-run-retry"),
    path("reward-models/", api.RewardModelListApi.as_view(), name="reward-model-list"),
    path("reward-models/<int:model_id>/", api.RewardModelDetailApi.as_view(), name="reward-model-detail"),
    path(
        "reward-models/<int:model_id>/evaluate/",
        api.RewardModelEvaluateApi.as_view(),
        name="reward-model-evaluate",
    ),
    path(
        "reward-models/<int:model_id>/live-agreement/",
        api_active_sampling.RewardModelLiveAgreementApi.as_view(),
        name="reward-model-live-agreement",
    ),
    path(
        "reward-models/<int:model_id>/promote/",
        api.RewardModelPromoteApi.as_view(),
        name="reward-model-promote",
    ),
    path(
        "projects/<int:project_id>/reward-model/",
        api.ProjectActiveRewardModelApi.as_view(),
        name="project-active-reward-model",
    ),
    path("projects/<int:project_id>/retrain/", api.ProjectRetrainApi.as_view(), name="project-retrain"),
    path(
        "projects/<int:project_id>/task-scoring/",
        api_active_sampling.ProjectTaskScoringApi.as_view(),
        name="project-task-scoring",
    ),
    path(
        "projects/<int:project_id>/task-scoring/<int:scoring_job_id>/cancel/",
        api_active_sampling.ProjectTaskScoringCancelApi.as_view(),
        name="project-task-scoring-cancel",
    ),
]
