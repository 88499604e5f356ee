"""API routes for dataset snapshots."""

from django.urls import path

from training.api import snapshots

urlpatterns = [
    path("snapshots/", snapshots.SnapshotListCreateApi.as_view(), name="snapshot-list"),
    path("snapshots/<int:snapshot_id>/", snapshots.SnapshotDetailApi.as_view(), name="snapshot-detail"),
    path("snapshots/<int:snapshot_id>/card/", snapshots.SnapshotCardApi.as_view(), name="snapshot-card"),
    path(
        "snapshots/<int:snapshot_id>/download/<str:fmt>/",
        snapshots.SnapshotDownloadApi.as_view(),
        name="snapshot-download",
    ),
]
