"""Quality pages (namespace ``annotation``): project quality, annotator detail, leaderboard, flag actions."""

from django.urls import path

from annotation import quality_views as views

urlpatterns = [
    path("projects/<int:project_id>/quality/", views.project_quality, name="quality-project"),
    path(
        "projects/<int:project_id>/quality/annotators/<int:annotator_id>/",
        views.annotator_quality,
        name="quality-annotator",
    ),
    path(
        "projects/<int:project_id>/quality/annotators/<int:annotator_id>/flag",
        views.flag_create_view,
        name="quality-flag-create",
    ),
    path("projects/<int:project_id>/quality/leaderboard/", views.leaderboard, name="quality-leaderboard"),
    path(
        "projects/<int:project_id>/quality/recompute",
        views.report_recompute_view,
        name="quality-recompute",
    ),
    # The former "Run quality checks now" button: the same job now recomputes statistics and flags.
    path(
        "projects/<int:project_id>/quality/flags/refresh",
        views.report_recompute_view,
        name="quality-flags-refresh",
    ),
    path(
        "projects/<int:project_id>/quality/flags/<int:flag_id>/clear",
        views.flag_clear_view,
        name="quality-flag-clear",
    ),
]
