"""REST API routes of the training app."""

from django.urls import include, path

urlpatterns = [
    path("", include("training.datasets.api_urls")),
    path("", include("training.rewardmodels.api_urls")),
    path("", include("training.rewardmodels.sweeps.api_urls")),
    path("", include("training.policy.api_urls")),
    path("", include("training.lineage.api_urls")),
]
