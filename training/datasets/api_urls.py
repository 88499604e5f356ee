"""API routes for dataset snapshots."""

from django.urls import path

from training.datasets import api

urlpatterns = [
    path("snapshots/", api.SnapshotListCreateApi.as_view(), name="snapshot-list"),
    path("snapshots/<int:snapshot_id>/", api.SnapshotDetailApi.as_view(), name="snapshot-detail"),
    path("snapshots/<int:snapshot_id>/card/", api.SnapshotCardApi.as_view(), name="snapshot-card"),
    path(
        "snapshots/<int:snapshot_id>/download/<str:fmt>/",
        api.SnapshotDownloadApi.as_view(),
        name="snapshot-download",
    ),
]
