"""Annotator pages: annotate, review, dashboard (namespace ``annotation``)."""

from django.urls import path

from annotation.ui import views

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
    path("me/dashboard", views.my_dashboard, name="dashboard"),
]
