"""Order metrics and the balance alert, read from the audit ledger (docs/deployment.md, "Metrics").

Every order attempt ends in exactly one committed ``order.*`` audit event carrying its outcome,
source, account type, refusal code and timing, so counting there counts each attempt once, after
its commit, without a call in the order path.
"""
from __future__ import annotations

from accounts.models import AlpacaAccount
from audit.models import AuditEvent
from audit.services import observe
from opitios import metrics
from opitios.alerts import alert_raise, alert_resolve

from . import balance as bal

ORDER_ACTIONS = {"order.submitted": "accepted", "order.refused": "refused", "order.rejected": "rejected", "order.failed": "failed"}


def _seconds(ms) -> float | None:
    return None if ms is None else float(ms) / 1000.0


def order_observed(event: AuditEvent) -> None:
    outcome = ORDER_ACTIONS.get(event.action)
    if outcome is None:
        return
    data = event.data or {}
    source, account_type = str(data.get("source") or "unknown"), str(data.get("account_type") or "unknown")
    error = data.get("error") or {}
    metrics.orders.labels(outcome, source, account_type, str(error.get("code") or "")).inc()
    timing = data.get("timing") or {}
    for histogram, key in ((metrics.order_total, "total_ms"), (metrics.order_broker, "broker_ms"), (metrics.order_overhead, "overhead_ms")):
        value = _seconds(timing.get(key))
        if value is not None:
            histogram.labels(source, account_type).observe(value)
    balance = ((data.get("checks") or {}).get("balance") or {}).get("status")
    if outcome == "accepted" and balance != bal.UNVERIFIED:  # an order that went ahead unverified resolves nothing
        alert_resolve(f"balance_unverified:{event.account_id}")  # by pk: no query on the order path


def balance_unverified(event: AuditEvent) -> None:
    account_id = _account_id(event)
    alert_raise(f"balance_unverified:{event.account_id}", f"balance unverified for account {account_id}",
                "An order went ahead (or was refused) without a fresh balance: Alpaca's account endpoint did not answer in time.")


def _account_id(event: AuditEvent) -> str:
    if event.account_id is None:
        return "-"
    return AlpacaAccount.objects.filter(pk=event.account_id).values_list("account_id", flat=True).first() or str(event.account_id)


observe("order.", order_observed)
observe("balance.unverified", balance_unverified)
