"""REST API routes of the annotation app, one module per workstream."""

from django.urls import include, path

urlpatterns = [
    path("", include("annotation.api.urls_core")),
    path("", include("annotation.api.urls_import")),
    path("", include("annotation.api.urls_assignment")),
    path("", include("annotation.api.urls_quality")),
    path("", include("annotation.api.urls_spot_checks")),
]
