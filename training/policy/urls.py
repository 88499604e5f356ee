"""Web routes of the policy loop (namespace ``training``)."""

from django.urls import path

from training.policy import views

urlpatterns = [
    path("policy/", views.policy_list_page, name="policy_list"),
    path("policy/new/", views.policy_create_page, name="policy_create"),
    path("policy/battle/new/", views.policy_battle_create_page, name="policy_battle_create"),
    path("policy/<int:run_id>/", views.policy_detail_page, name="policy_detail"),
    path("policy/<int:run_id>/live.json", views.policy_live_json, name="policy_live"),
    path("policy/<int:run_id>/cancel/", views.policy_cancel_page, name="policy_cancel"),
    path("policy/<int:run_id>/openrlhf/", views.policy_openrlhf_page, name="policy_openrlhf"),
]
