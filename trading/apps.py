from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"

    def ready(self) -> None:
        from . import metrics, schema, throttles  # noqa: F401 - the OpenAPI scheme, the health section, order metrics
