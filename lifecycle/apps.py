from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    """The trade-updates listener (docs/architecture.md, "Order lifecycle"): it sits above the sell bot,
    feeding the trading ledger and the sell bot's positions from the broker's events."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "lifecycle"
    verbose_name = "Order lifecycle"

    def ready(self) -> None:
        from opitios.health import register_section

        from . import metrics
        from .health import trade_updates_section

        register_section("trade_updates", trade_updates_section)
        metrics.connect()
