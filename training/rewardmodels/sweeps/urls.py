"""Web routes of reward-model sweeps (namespace ``training``)."""

from django.urls import path

from training.rewardmodels.sweeps import views

urlpatterns = [
    path("sweeps/", views.sweep_list_page, name="sweep_list"),
    path("sweeps/new/", views.sweep_create_page, name="sweep_create"),
    path("sweeps/<int:sweep_id>/", views.sweep_detail_page, name="sweep_detail"),
    path("sweeps/<int:sweep_id>/cancel/", views.sweep_cancel_page, name="sweep_cancel"),
    path("sweeps/<int:sweep_id>/resume/", views.sweep_resume_page, name="sweep_resume"),
]
