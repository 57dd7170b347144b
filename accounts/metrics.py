"""Account metrics and alerts (docs/deployment.md, "Metrics" and "Alerts").

Upstream calls are counted by the broker adapter (``opitios.metrics.upstream_observed``); accounts by type and
state and the balance snapshots' age are read from the database at scrape time, one aggregate
query each. Per-account series only for ``metrics.account_labels`` (opitios/metrics.py).
"""
from __future__ import annotations

from django.db.models import Case, CharField, Count, Max, Q, Value, When
from django.db.models.signals import post_save
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from accounts.models import AlpacaAccount
from opitios import metrics
from opitios.alerts import alert_raise, alert_resolve
from opitios.config import current_config

_STATE = Case(
    When(enabled=False, then=Value("disabled")),
    When(~Q(config_error=""), then=Value("config_invalid")),
    When(type_mismatch=True, then=Value("type_mismatch")),
    When(~Q(detection_error=""), then=Value("detection_failed")),
    default=Value("ok"),
    output_field=CharField(),
)


def accounts_collector():
    family = GaugeMetricFamily("opitios_accounts", "Accounts by type and state.", labels=["account_type", "state"])
    rows = AlpacaAccount.objects.order_by().annotate(state=_STATE).values("account_type", "state").annotate(n=Count("id"))
    for row in rows:
        family.add_metric([row["account_type"], row["state"]], row["n"])
    yield family


def balance_age_collector():
    """Oldest and newest latest-snapshot age over enabled accounts, plus the allow-listed ones."""
    now = timezone.now()
    latest = AlpacaAccount.objects.filter(enabled=True).order_by().annotate(last=Max("balance_snapshots__fetched_at"))
    rows = list(latest.values_list("account_id", "last"))
    ages = {a: (now - at).total_seconds() for a, at in rows if at is not None}
    family = GaugeMetricFamily("opitios_balance_snapshot_age_seconds", "Age of the latest balance snapshot.",
                               labels=["account", "stat"])
    if ages:
        family.add_metric(["all", "oldest"], max(ages.values()))
        family.add_metric(["all", "newest"], min(ages.values()))
    for account_id in current_config().metrics.account_labels:
        if account_id in ages:
            family.add_metric([account_id, "latest"], ages[account_id])
    yield family
    missing = GaugeMetricFamily("opitios_balance_snapshot_missing", "Enabled accounts without any balance snapshot.")
    missing.add_metric([], sum(1 for _, at in rows if at is None))
    yield missing


def account_saved(sender, instance: AlpacaAccount, update_fields=None, **kwargs) -> None:
    """Detection writes type_mismatch and detection_error with update_fields (accounts.detection)."""
    fields = set(update_fields or ())
    if update_fields is not None and not fields & {"type_mismatch", "detection_error"}:
        return
    key = instance.account_id
    if instance.type_mismatch:
        alert_raise(f"type_mismatch:{key}", f"account type mismatch: {key}",
                    f"{key} is configured {'paper' if instance.paper_trading else 'live'} but Alpaca says "
                    f"{instance.account_type}. Trading on it is blocked until secrets.yml is corrected.")
    else:
        alert_resolve(f"type_mismatch:{key}")
    if instance.detection_error:
        alert_raise(f"detection_failed:{key}", f"paper/live detection failed: {key}", instance.detection_error)
    else:
        alert_resolve(f"detection_failed:{key}")


def connect() -> None:
    metrics.register_collector(accounts_collector)
    metrics.register_collector(balance_age_collector)
    post_save.connect(account_saved, sender=AlpacaAccount, dispatch_uid="accounts.metrics.account_saved")
