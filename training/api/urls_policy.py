"""API routes of the policy loop (SFT / PPO / GRPO / RLOO runs, the evaluation gate, OpenRLHF export)."""

from django.urls import path

from training.api import policy

urlpatterns = [
    path("policy-runs/", policy.PolicyRunListCreateApi.as_view(), name="policy-run-list"),
    path("policy-runs/<int:run_id>/", policy.PolicyRunDetailApi.as_view(), name="policy-run-detail"),
    path(
        "policy-runs/<int:run_id>/openrlhf/",
        policy.PolicyRunOpenRLHFApi.as_view(),
        name="policy-run-openrlhf",
    ),
]
