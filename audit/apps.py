from django.apps import AppConfig


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "Audit and compliance"

    def ready(self) -> None:
        from audit import health, metrics  # noqa: F401  (health registers the audit_chain section of /health/detailed)

        metrics.connect()
