"""Web routes for dataset snapshots."""

from django.urls import path

from training.datasets import views

urlpatterns = [
    path("snapshots/", views.snapshot_list_page, name="snapshot_list"),
    path("snapshots/new", views.snapshot_create_page, name="snapshot_create"),
    path("snapshots/count", views.snapshot_count_json, name="snapshot_count"),
    path("snapshots/<int:snapshot_id>/", views.snapshot_detail_page, name="snapshot_detail"),
]
