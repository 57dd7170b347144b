from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        from accounts import health, metrics, selectors
        from opitios.health import register_readiness, register_section

        register_section("accounts", selectors.accounts_health)
        register_readiness("accounts", health.accounts_readiness)
        metrics.connect()
