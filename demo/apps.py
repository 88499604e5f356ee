from django.apps import AppConfig


class DemoAppConfig(AppConfig):
    """Registered so Django finds the ``demo`` management command; the package has no models."""

    name = "demo"
    verbose_name = "End-to-end demo"
