"""Web routes for training runs and the reward-model registry (namespace ``training``)."""

from django.urls import path

from training.rewardmodels import views

urlpatterns = [
    path("runs/", views.run_list_page, name="run_list"),
    path("runs/new/", views.run_create_page, name="run_create"),
    path("runs/<int:run_id>/", views.run_detail_page, name="run_detail"),
    path("runs/<int:run_id>/live.json", views.run_live_json, name="run_live"),
    path("runs/<int:run_id>/cancel/", views.run_cancel_page, name="run_cancel"),
    path("runs/<int:run_id>/retry/", views.run_retry_page, name="run_retry"),
    path("reward-models/", views.reward_model_list_page, name="reward_model_list"),
    path("reward-models/compare/", views.reward_model_compare_page, name="reward_model_compare"),
    path("reward-models/<int:model_id>/", views.reward_model_detail_page, name="reward_model_detail"),
    path(
        "reward-models/<int:model_id>/promote/",
        views.reward_model_promote_page,
        name="reward_model_promote",
    ),
    path(
        "reward-models/<int:model_id>/live-agreement/",
        views.reward_model_live_agreement_page,
        name="reward_model_live_agreement",
    ),
    path(
        "reward-models/<int:model_id>/evaluate/",
        views.reward_model_evaluate_page,
        name="reward_model_evaluate",
    ),
]
