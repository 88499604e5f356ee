"""REST API routes of the training app."""

from django.urls import include, path

urlpatterns = [
    path("", include("training.api.urls_snapshots")),
    path("", include("training.api.urls_runs")),
    path("", include("training.api.urls_policy")),
]
