"""API routes of the policy loop (SFT / PPO / GRPO / RLOO / DPO runs, battles among finished runs, the
evaluation gate, OpenRLHF export, the policy registry and its promotion gate)."""

from django.urls import path

from training.policy import api, registry_api
from training.policy.capability import api as capability_api

urlpatterns = [
    path("policy-runs/", api.PolicyRunListCreateApi.as_view(), name="policy-run-list"),
    path("policy-runs/<int:run_id>/", api.PolicyRunDetailApi.as_view(), name="policy-run-detail"),
    path("policy-battles/", api.PolicyBattleCreateApi.as_view(), name="policy-battle-create"),
    path(
        "policy-runs/<int:run_id>/openrlhf/",
        api.PolicyRunOpenRLHFApi.as_view(),
        name="policy-run-openrlhf",
    ),
    path(
        "policy-runs/<int:run_id>/register/",
        registry_api.PolicyRunRegisterApi.as_view(),
        name="policy-run-register",
    ),
    path("policy-versions/", registry_api.PolicyVersionListApi.as_view(), name="policy-version-list"),
    path(
        "policy-versions/<int:policy_id>/",
        registry_api.PolicyVersionDetailApi.as_view(),
        name="policy-version-detail",
    ),
    path(
        "policy-versions/<int:policy_id>/gate/",
        registry_api.PolicyGateCheckApi.as_view(),
        name="policy-version-gate",
    ),
    path(
        "policy-versions/<int:policy_id>/promote/",
        registry_api.PolicyPromoteApi.as_view(),
        name="policy-version-promote",
    ),
    path(
        "policy-versions/<int:policy_id>/promotions/",
        registry_api.PolicyPromotionListApi.as_view(),
        name="policy-version-promotions",
    ),
    path(
        "projects/<int:project_id>/policy/",
        registry_api.ProjectActivePolicyApi.as_view(),
        name="project-active-policy",
    ),
    path(
        "policy-runs/<int:run_id>/capability/",
        capability_api.CapabilityGateApi.as_view(),
        name="policy-run-capability",
    ),
]
