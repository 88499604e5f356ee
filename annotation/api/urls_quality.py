"""Routes of the quality API (agreement, annotators, reliability, leaderboard, flags) under /api/v1/."""

from django.urls import path

from annotation.api import quality as views

urlpatterns = [
    path("projects/<int:project_id>/quality", views.ProjectQualityApi.as_view(), name="api-quality-project"),
    path(
        "projects/<int:project_id>/quality/annotators/<int:annotator_id>",
        views.AnnotatorQualityApi.as_view(),
        name="api-quality-annotator",
    ),
    path(
        "projects/<int:project_id>/quality/recompute",
        views.QualityRecomputeApi.as_view(),
        name="api-quality-recompute",
    ),
    path(
        "projects/<int:project_id>/quality/reliability",
        views.ReliabilityApi.as_view(),
        name="api-quality-reliability",
    ),
    path(
        "projects/<int:project_id>/leaderboard",
        views.LeaderboardApi.as_view(),
        name="api-quality-leaderboard",
    ),
    path("projects/<int:project_id>/quality/flags", views.FlagListApi.as_view(), name="api-quality-flags"),
    path(
        "projects/<int:project_id>/quality/flags/refresh",
        views.FlagsRefreshApi.as_view(),
        name="api-quality-flags-refresh",
    ),
    path("quality/flags/<int:flag_id>/clear", views.FlagClearApi.as_view(), name="api-quality-flag-clear"),
]
