from django.apps import AppConfig


class RewardsvcConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rewardsvc"
    verbose_name = "Reward service"

    def ready(self) -> None:
        from rewardsvc.receivers import record_policy_rollouts
        from training.policy.signals import policy_rollouts_sampled

        policy_rollouts_sampled.connect(
            record_policy_rollouts, dispatch_uid="rewardsvc.record_policy_rollouts"
        )
