from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from accounts import health, metrics, selectors
        from accounts.account_cache import accounts_changed
        from accounts.models import AlpacaAccount
        from opitios.health import register_readiness, register_section

        # Every write of an account row, whoever makes it (admin, sync, detection, rotation).
        post_save.connect(accounts_changed, sender=AlpacaAccount, dispatch_uid="account_cache")
        post_delete.connect(accounts_changed, sender=AlpacaAccount, dispatch_uid="account_cache")

        register_section("accounts", selectors.accounts_health)
        register_readiness("accounts", health.accounts_readiness)
        metrics.connect()
