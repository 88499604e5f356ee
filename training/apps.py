from django.apps import AppConfig


class TrainingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "training"

    def ready(self) -> None:
        # Register the training tasks by name in every process (web too): services publish them by name,
        # and with ``CELERY_TASK_ALWAYS_EAGER`` a registered task runs in place.
        from training import tasks  # noqa: F401

        # Lineage cards follow the artefacts they describe (written after the commits that change them).
        from training.lineage import receivers  # noqa: F401
