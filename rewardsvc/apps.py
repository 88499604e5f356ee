from django.apps import AppConfig


class RewardsvcConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rewardsvc"
    verbose_name = "Reward service"
