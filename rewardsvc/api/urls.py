"""REST API routes of the rewardsvc app."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
