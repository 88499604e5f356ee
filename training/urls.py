"""Web pages of the training app (namespace ``training``)."""

from django.urls import include, path

app_name = "training"
urlpatterns = [
    path("", include("training.datasets.urls")),
    path("", include("training.rewardmodels.urls")),
    path("", include("training.rewardmodels.sweeps.urls")),
    path("", include("training.policy.urls")),
    path("", include("training.lineage.urls")),
]
