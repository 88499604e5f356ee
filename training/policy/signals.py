"""Signals of the policy loop. Later stages (``rewardsvc``) connect to them; training never imports them.

``policy_rollouts_sampled``: sent once at the end of a policy run with ``run`` (the ``TrainingRun``) and
``rows`` (``[{"prompt", "response", "reward", "step", "run_id", "source": "rollout"}]``): sampled rollouts for
the reward model's spot-check queue.
"""

from django.dispatch import Signal

policy_rollouts_sampled = Signal()
