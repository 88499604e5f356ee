"""Annotator pages: annotate, review, dashboard (namespace ``annotation``)."""

from django.urls import path

from annotation.ui import spot_checks, views

urlpatterns = [
    path("projects/<int:project_id>/annotate", views.annotate, name="annotate"),
    path(
        "projects/<int:project_id>/annotate/tasks/<int:task_id>/submit",
        views.annotate_submit,
        name="annotate-submit",
    ),
    path(
        "projects/<int:project_id>/annotate/tasks/<int:task_id>/skip",
        views.annotate_skip,
        name="annotate-skip",
    ),
    path("projects/<int:project_id>/annotate/undo", views.annotate_undo, name="annotate-undo"),
    path("projects/<int:project_id>/annotate/next", views.annotate_next, name="annotate-next"),
    path(
        "projects/<int:project_id>/annotate/feedback/<int:judgment_id>",
        views.annotate_feedback,
        name="annotate-feedback",
    ),
    path("projects/<int:project_id>/review", views.review, name="review"),
    path(
        "projects/<int:project_id>/review/tasks/<int:task_id>",
        views.review_adjudicate,
        name="review-adjudicate",
    ),
    path(
        "projects/<int:project_id>/spot-checks", spot_checks.spot_check_verdicts, name="spot-check-verdicts"
    ),
    path(
        "projects/<int:project_id>/spot-checks/verdict",
        spot_checks.spot_check_verdict_submit_page,
        name="spot-check-verdict-submit",
    ),
    path("me/dashboard", views.my_dashboard, name="dashboard"),
]
