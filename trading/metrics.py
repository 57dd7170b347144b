"""Order metrics and the balance alert, read from the audit ledger (docs/deployment.md, "Metrics").

Every order attempt ends in exactly one committed ``order.*`` audit event carrying its outcome,
source, account type, refusal code and timing, so counting there counts each attempt once, after
its commit, without a call in the order path.
"""
from __future__ import annotations

import time

from accounts.models import AlpacaAccount
from audit.models import AuditEvent
from audit.services import observe
from opitios import metrics
from opitios.alerts import alert_raise, alert_resolve

from . import balance as bal

# An accepted order resolves its account's balance alert. This process skips the shared cache's read
# (a round trip per order) for QUIET_SECONDS after it found the alert not raised, or resolved it; a
# raise it observes itself ends the pause. One raised by another process is resolved at most that late.
QUIET_SECONDS = 5.0
_quiet_until: dict[int | None, float] = {}

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
    # an order that went ahead unverified resolves nothing
    if outcome == "accepted" and balance != bal.UNVERIFIED and _quiet_until.get(event.account_id, 0.0) <= time.monotonic():
        alert_resolve(f"balance_unverified:{event.account_id}")  # by pk: no query on the order path
        _quiet_until[event.account_id] = time.monotonic() + QUIET_SECONDS


def balance_unverified(event: AuditEvent) -> None:
    _quiet_until.pop(event.account_id, None)
    account_id = _account_id(event)
    alert_raise(f"balance_unverified:{event.account_id}", f"balance unverified for account {account_id}",
                "An order went ahead (or was refused) without a fresh balance: Alpaca's account endpoint did not answer in time.")


def _account_id(event: AuditEvent) -> str:
    if event.account_id is None:
        return "-"
    return AlpacaAccount.objects.filter(pk=event.account_id).values_list("account_id", flat=True).first() or str(event.account_id)


observe("order.", order_observed)
observe("balance.unverified", balance_unverified)
