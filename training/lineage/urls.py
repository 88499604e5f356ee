"""Web routes of the lineage pages (namespace ``training``)."""

from django.urls import path

from training.lineage import views

urlpatterns = [
    path("snapshots/<int:snapshot_id>/lineage/", views.snapshot_lineage_page, name="snapshot_lineage"),
    path(
        "reward-models/<int:model_id>/lineage/", views.reward_model_lineage_page, name="reward_model_lineage"
    ),
    path("policy/<int:run_id>/lineage/", views.policy_lineage_page, name="policy_lineage"),
]
