"""The audit chain's verification status as metrics, and its alert (docs/deployment.md)."""
from __future__ import annotations

from django.db.models.signals import post_save
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from audit.models import AuditChainCheck
from opitios import metrics
from opitios.alerts import alert_raise, alert_resolve

ALERT_KEY = "audit_chain_broken"


def chain_collector():
    check = AuditChainCheck.objects.order_by("-ran_at").only("ran_at", "ok").first()
    ok = GaugeMetricFamily("opitios_audit_chain_ok", "1 when the last chain check passed, 0 when it found a break, -1 before any check.")
    ok.add_metric([], -1 if check is None else int(check.ok))
    yield ok
    if check is not None:
        age = GaugeMetricFamily("opitios_audit_chain_check_age_seconds", "Seconds since the last chain check.")
        age.add_metric([], (timezone.now() - check.ran_at).total_seconds())
        yield age


def check_saved(sender, instance: AuditChainCheck, created: bool = False, **kwargs) -> None:
    if not created:
        return
    if instance.ok:
        alert_resolve(ALERT_KEY)
    else:
        alert_raise(ALERT_KEY, "audit chain broken",
                    f"The audit chain check found a break at event #{instance.first_broken_seq}: {instance.reason}. "
                    "See docs/operations.md on the audit chain.")


def connect() -> None:
    metrics.register_collector(chain_collector)
    post_save.connect(check_saved, sender=AuditChainCheck, dispatch_uid="audit.metrics.check_saved")
