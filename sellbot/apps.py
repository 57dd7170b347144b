from django.apps import AppConfig


class SellbotConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "sellbot"
    verbose_name = "Sell bot"

    def ready(self) -> None:
        from opitios.health import register_section

        from .health import sellbot_section

        register_section("sellbot", sellbot_section)
