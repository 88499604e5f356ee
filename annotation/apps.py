from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "annotation"

    def ready(self) -> None:
        # Register the annotation tasks by name in every process (web too): services queue them by name
        # (config.jobs.task_by_name), and with ``CELERY_TASK_ALWAYS_EAGER`` a registered task runs in place.
        from annotation import tasks  # noqa: F401
