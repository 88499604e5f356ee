"""API routes of reward-model sweeps."""

from django.urls import path

from training.rewardmodels.sweeps import api

urlpatterns = [
    path("reward-sweeps/", api.SweepListCreateApi.as_view(), name="reward-sweep-list"),
    path("reward-sweeps/<int:sweep_id>/", api.SweepDetailApi.as_view(), name="reward-sweep-detail"),
    path("reward-sweeps/<int:sweep_id>/cancel/", api.SweepCancelApi.as_view(), name="reward-sweep-cancel"),
    path("reward-sweeps/<int:sweep_id>/resume/", api.SweepResumeApi.as_view(), name="reward-sweep-resume"),
]
