"""Web pages of the annotation app (namespace ``annotation``)."""

from django.urls import include, path

app_name = "annotation"
urlpatterns = [
    path("", include("annotation.urls_ui")),
    path("", include("annotation.urls_quality")),
    path("", include("annotation.urls_setup")),
]
