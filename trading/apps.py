from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"

    def ready(self) -> None:
        # the OpenAPI scheme, the health section, order metrics, the error table the exception handler renders with
        from . import errors, metrics, schema, throttles  # noqa: F401
