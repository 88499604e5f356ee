"""Signal receivers: the reward service listens to the policy loop (a lower stage) without it importing us.

Sampled rollouts of a policy run land in the spot-check queue (``ScoredSample`` rows with source
``rollout``), from where the spot-check page sends them to an annotation project as comparison tasks."""

from __future__ import annotations

from rewardsvc.services import scored_samples_record


def record_policy_rollouts(sender, *, run, rows, **kwargs) -> None:
    reward = (run.summary or {}).get("reward") or {}
    reward_model_id = reward.get("reward_model_id") if isinstance(reward, dict) else None
    scored_samples_record(
        rows=[{**row, "run_id": row.get("run_id", run.pk)} for row in rows],
        reward_model_id=reward_model_id,
        source="rollout",
    )
