"""Web routes of the policy loop (namespace ``training``)."""

from django.urls import path

from training.policy import registry_views, views

urlpatterns = [
    path("policy/", views.policy_list_page, name="policy_list"),
    path("policy/new/", views.policy_create_page, name="policy_create"),
    path("policy/battle/new/", views.policy_battle_create_page, name="policy_battle_create"),
    path("policy/<int:run_id>/", views.policy_detail_page, name="policy_detail"),
    path("policy/<int:run_id>/live.json", views.policy_live_json, name="policy_live"),
    path("policy/<int:run_id>/cancel/", views.policy_cancel_page, name="policy_cancel"),
    path("policy/<int:run_id>/openrlhf/", views.policy_openrlhf_page, name="policy_openrlhf"),
    path("policy/<int:run_id>/register/", registry_views.policy_register_page, name="policy_register"),
    path("policy/registry/", registry_views.policy_registry_page, name="policy_registry"),
    path("policy/versions/<int:policy_id>/", registry_views.policy_version_page, name="policy_version"),
    path("policy/versions/<int:policy_id>/gate/", registry_views.policy_gate_page, name="policy_gate"),
    path(
        "policy/versions/<int:policy_id>/promote/", registry_views.policy_promote_page, name="policy_promote"
    ),
]
