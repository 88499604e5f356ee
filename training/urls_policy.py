"""Web routes of the policy loop (namespace ``training``)."""

from django.urls import path

from training import views_policy

urlpatterns = [
    path("policy/", views_policy.policy_list_page, name="policy_list"),
    path("policy/new/", views_policy.policy_create_page, name="policy_create"),
    path("policy/<int:run_id>/", views_policy.policy_detail_page, name="policy_detail"),
    path("policy/<int:run_id>/live.json", views_policy.policy_live_json, name="policy_live"),
    path("policy/<int:run_id>/cancel/", views_policy.policy_cancel_page, name="policy_cancel"),
    path("policy/<int:run_id>/openrlhf/", views_policy.policy_openrlhf_page, name="policy_openrlhf"),
]
