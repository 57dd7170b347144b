from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"

    def ready(self) -> None:
        from . import schema, throttles  # noqa: F401 - register the OpenAPI scheme and the health section
