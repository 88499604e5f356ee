"""Reward-service data: a sample of scored (prompt, response) pairs kept for human spot checks."""

from __future__ import annotations

from django.db import models

from training.models import RewardModel


class ScoredSample(models.Model):
    """A scored (prompt, response) pair, sampled from live traffic or a rollout, for spot checks."""

    reward_model = models.ForeignKey(RewardModel, null=True, on_delete=models.SET_NULL, related_name="+")
    prompt = models.TextField()
    messages = models.JSONField(null=True, blank=True)
    response = models.TextField()
    reward = models.FloatField()
    source = models.CharField(max_length=32, default="traffic", help_text="traffic, rollout, spot_check")
    run_id = models.BigIntegerField(null=True, blank=True, help_text="Policy run that produced it, if any.")
    sent_to_project_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
