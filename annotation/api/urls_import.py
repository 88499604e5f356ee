"""Routes of the import API under /api/v1/."""

from django.urls import path

from annotation.api.imports import ProjectImportApi

urlpatterns = [
    path("projects/<int:project_id>/import", ProjectImportApi.as_view(), name="project-import"),
]
