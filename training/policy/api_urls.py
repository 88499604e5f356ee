"""API routes of the policy loop (SFT / PPO / GRPO / RLOO / DPO runs, battles among finished runs, the
evaluation gate, OpenRLHF export)."""

from django.urls import path

from training.policy import api

urlpatterns = [
    path("policy-runs/", api.PolicyRunListCreateApi.as_view(), name="policy-run-list"),
    path("policy-runs/<int:run_id>/", api.PolicyRunDetailApi.as_view(), name="policy-run-detail"),
    path("policy-battles/", api.PolicyBattleCreateApi.as_view(), name="policy-battle-create"),
    path(
        "policy-runs/<int:run_id>/openrlhf/",
        api.PolicyRunOpenRLHFApi.as_view(),
        name="policy-run-openrlhf",
    ),
]
