"""Celery side of policy runs (SFT / PPO / GRPO / RLOO): importing the executors registers them with
``training.jobs``; the generic ``training.run.execute`` task (``run_tasks``) runs them."""

from training.policy import executors  # noqa: F401  (registers the sft / ppo / grpo / rloo executors)
