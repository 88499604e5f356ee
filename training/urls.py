"""Web pages of the training app (namespace ``training``)."""

from django.urls import include, path

app_name = "training"
urlpatterns = [
    path("", include("training.urls_snapshots")),
    path("", include("training.urls_runs")),
    path("", include("training.urls_policy")),
]
