"""Django admin for the reward service's sampled scores."""

from django.contrib import admin

from rewardsvc.models import ScoredSample


@admin.register(ScoredSample)
class ScoredSampleAdmin(admin.ModelAdmin):
    list_display = ("id", "reward_model", "reward", "source", "created_at")
    list_filter = ("source",)
