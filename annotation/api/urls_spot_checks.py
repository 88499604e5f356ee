"""Routes of the spot-check verdict API (reviewers) under /api/v1/."""

from django.urls import path

from annotation.api import spot_checks as views

urlpatterns = [
    path(
        "projects/<int:project_id>/spot-checks/next",
        views.SpotCheckNextApi.as_view(),
        name="api-spot-check-next",
    ),
    path(
        "projects/<int:project_id>/spot-checks/verdicts",
        views.SpotCheckVerdictListCreateApi.as_view(),
        name="api-spot-check-verdicts",
    ),
]
