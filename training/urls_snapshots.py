"""Web routes for dataset snapshots."""

from django.urls import path

from training import views_snapshots

urlpatterns = [
    path("snapshots/", views_snapshots.snapshot_list_page, name="snapshot_list"),
    path("snapshots/new", views_snapshots.snapshot_create_page, name="snapshot_create"),
    path("snapshots/count", views_snapshots.snapshot_count_json, name="snapshot_count"),
    path("snapshots/<int:snapshot_id>/", views_snapshots.snapshot_detail_page, name="snapshot_detail"),
]
