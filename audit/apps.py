from django.apps import AppConfig


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "Audit and compliance"

    def ready(self) -> None:
        from audit import health  # noqa: F401  (registers the audit_chain section of /health/detailed)
