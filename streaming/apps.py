from django.apps import AppConfig


class StreamingConfig(AppConfig):
    name = "streaming"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from opitios.health import register_section
        from streaming import metrics
        from streaming.status import health_section

        register_section("streams", health_section)
        metrics.connect()
