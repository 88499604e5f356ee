"""API routes of lineage: the chain and the JSON card of a snapshot, a reward model and a policy run."""

from django.urls import path

from training.lineage import api

urlpatterns = [
    path("snapshots/<int:snapshot_id>/lineage/", api.SnapshotLineageApi.as_view(), name="snapshot-lineage"),
    path(
        "snapshots/<int:snapshot_id>/lineage/card/",
        api.SnapshotLineageCardApi.as_view(),
        name="snapshot-lineage-card",
    ),
    path(
        "reward-models/<int:model_id>/lineage/",
        api.RewardModelLineageApi.as_view(),
        name="reward-model-lineage",
    ),
    path(
        "reward-models/<int:model_id>/lineage/card/",
        api.RewardModelLineageCardApi.as_view(),
        name="reward-model-lineage-card",
    ),
    path("policy-runs/<int:run_id>/lineage/", api.PolicyRunLineageApi.as_view(), name="policy-run-lineage"),
    path(
        "policy-runs/<int:run_id>/lineage/card/",
        api.PolicyRunLineageCardApi.as_view(),
        name="policy-run-lineage-card",
    ),
]
