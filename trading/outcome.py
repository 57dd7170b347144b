"""The outcome of an order attempt: finalise the ``OrderRecord`` (timings, outcome, stored answer),
commit it with its audit events, write the one log line (docs/architecture.md, "The order pipeline")."""
from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from datetime import UTC, datetime

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction

from accounts.balance_refresh import balance_refresh_request
from accounts.broker import BrokerOrder
from accounts.models import AlpacaAccount
from audit.services import audit_record
from opitios.db import update_by_pk
from opitios.errors import error_body
from opitios.formats import iso, num
from opitios.request_timing import log_after_response

from . import balance as bal
from .errors import refusal_status
from .formatting import account_ref_json, balance_check_json, intent_json, placed_order_json, timing_json
from .intents import OrderIntent
from .models import OrderRecord, Outcome, Source
from .results import Placement, Refusal

logger = logging.getLogger("opitios.trading.orders")

AUDIT_ACTIONS = {
    Outcome.ACCEPTED: "order.submitted",
    Outcome.REFUSED: "order.refused",
    Outcome.REJECTED: "order.rejected",
    Outcome.FAILED: "order.failed",
}

def utcnow() -> datetime:
    return datetime.now(UTC)


def _ms(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else round((b - a).total_seconds() * 1000, 3)


def _finalise(
    record: OrderRecord,
    *,
    account: AlpacaAccount,
    intent: OrderIntent,
    outcome: str,
    check: bal.BalanceCheck | None,
    order: BrokerOrder | None = None,
    refusal: Refusal | None = None,
    extra: dict | None = None,
) -> Placement:
    record._finalising = True  # from here a failure is the outcome's write, not the placement
    record.completed_at = utcnow()
    record.total_ms = _ms(record.received_at, record.completed_at)
    record.broker_ms = _ms(record.submitted_at, record.responded_at)
    record.overhead_ms = None if record.total_ms is None else round(record.total_ms - (record.broker_ms or 0.0), 3)
    if record.recovered:  # the broker's own time for the order is not known: the answer was lost
        record.broker_ms = record.overhead_ms = None
    record.outcome = outcome
    record.http_status = http_status = refusal_status(refusal)
    record.balance_status = check.status if check else ""
    account_json = account_ref_json(account)
    checks = {"balance": balance_check_json(check)} if check else {}
    if order is not None:
        record.broker_order_id = order.id
        record.broker_status = order.status
        if order.legs:  # the broker's own orders for a bracket's, oco's or oto's legs, beside the requested ones
            record.legs = {**(record.legs or {}), "broker": [
                {"id": leg.id, "type": leg.type, "side": leg.side, "status": leg.status, "limit_price": num(leg.limit_price),
                 "stop_price": num(leg.stop_price)} for leg in order.legs]}
        body = placed_order_json(order, account=account_json, source=record.source, checks=checks, timing=timing_json(record),
                                 replayed=False, **(extra or {}))
    else:
        record.error_code, record.error_message = refusal.code, refusal.message[:500]
        details = {"client_order_id": record.client_order_id, "order": intent_json(intent), "account": account_json,
                   "checks": checks, "timing": timing_json(record), "replayed": False, **refusal.details}
        body = error_body(refusal.code, refusal.message, details)
    record.response = body

    audit_data = {
        "client_order_id": record.client_order_id,
        "order": intent_json(intent),
        "outcome": outcome,
        "http_status": http_status,
        "broker_order_id": record.broker_order_id or None,
        "error": None if refusal is None else {"code": refusal.code, "message": refusal.message},
        "checks": checks,
        "timing": timing_json(record),
        "source": record.source,
        "account_type": account.account_type,
    }
    actor_type = "sellbot" if record.source == Source.SELLBOT else "user"
    try:
        order_outcome_write(record, account=account, check=check, outcome=outcome, audit_data=audit_data, actor_type=actor_type)
    except BaseException:
        _log_unrecorded(record, account)
        raise

    _log_line(record, account, refusal)
    return Placement(outcome, record, body, order=order, refusal=refusal)


def order_outcome_write(record: OrderRecord, *, account, check, outcome: str, audit_data: dict, actor_type: str) -> None:
    """Commit the record's outcome and its audit events. The broker call already happened, so a
    database that drops away (a PostgreSQL restart) is retried for FINALISE_RETRY_SECONDS before the
    request gives up with 503 ``database_unavailable``; then the record stays pending and a retry with
    the same client_order_id reconciles with the broker once it is stale."""
    deadline = time.monotonic() + settings.FINALISE_RETRY_SECONDS
    while True:
        try:
            _write_outcome_once(record, account=account, check=check, outcome=outcome, audit_data=audit_data, actor_type=actor_type)
            return
        except (OperationalError, InterfaceError) as exc:
            connection = connections[OrderRecord.objects.db]
            if connection.in_atomic_block or time.monotonic() >= deadline:
                raise
            logger.warning("order outcome not written yet, retrying client_order_id=%s error=%s",
                           record.client_order_id, exc.__class__.__name__)
            connection.close()  # the next attempt opens a fresh connection
            time.sleep(0.5)


# What placement changes on the pending record; the UPDATE sends only these.
_OUTCOME_FIELDS = ("submitted_at", "responded_at", "completed_at", "total_ms", "broker_ms", "overhead_ms", "recovered", "outcome",
                   "http_status", "balance_status", "broker_order_id", "broker_status", "error_code", "error_message", "response",
                   "legs")


# A fill event may reach the ledger (trading/ledger.py) before this write: the broker status it
# recorded ("filled") is newer than the one the placement answer carried, and is kept.
_KEPT_FIELDS = ("broker_status",)


def _write_outcome_once(record: OrderRecord, *, account, check, outcome: str, audit_data: dict, actor_type: str) -> None:
    actions = [AUDIT_ACTIONS[outcome]]
    if check is not None and check.status == bal.INSUFFICIENT:
        actions.append("balance.insufficient")
    elif check is not None and check.status == bal.UNVERIFIED:
        actions.append("balance.unverified")
    # The record's UPDATE rides in the first event's statement; a single event (the common case)
    # is then one atomic statement, more events share a transaction.
    with transaction.atomic() if len(actions) > 1 else nullcontext():
        for index, action in enumerate(actions):
            audit_record(actor_type=actor_type, actor_id=record.user_id, action=action, account=account, obj=record, data=audit_data,
                         alongside=None if index else update_by_pk(record, _OUTCOME_FIELDS, keep=_KEPT_FIELDS))
    if outcome == Outcome.ACCEPTED:
        # Coalesced per account and sent from a background thread: no Celery message on the request path.
        transaction.on_commit(lambda pk=account.pk: balance_refresh_request(account_pk=pk))


def _log_line(record: OrderRecord, account: AlpacaAccount, refusal: Refusal | None) -> None:
    # ERROR means someone must act: a failed order, or an account that refuses every order. A routine
    # refusal of one order (insufficient_balance, a limit) is the system working: WARNING.
    level = logging.INFO
    if record.outcome in (Outcome.REFUSED, Outcome.REJECTED):
        level = logging.WARNING
    if record.outcome == Outcome.FAILED or (refusal and refusal.code in ("account_type_mismatch", "account_type_unverified")):
        level = logging.ERROR
    qty = record.qty if record.qty is not None else f"${record.notional}"
    # Held until the response is built, to carry request_total_ms (docs/architecture.md, "Order timing").
    log_after_response(
        logger,
        level,
        "order account=%s type=%s source=%s side=%s symbol=%s qty=%s status=%s order_id=%s client_order_id=%s "
        "total_ms=%s broker_ms=%s overhead_ms=%s balance=%s code=%s",
        account.account_id, record.account_type, record.source, record.side, record.symbol, qty, record.outcome,
        record.broker_order_id or "-", record.client_order_id, record.total_ms, record.broker_ms, record.overhead_ms,
        record.balance_status or "-", record.error_code or "-",
    )


def _log_unrecorded(record: OrderRecord, account: AlpacaAccount) -> None:
    """The outcome could not be written: this line (and Alpaca) is then the only trace of the broker
    order id and the timings, so it carries them at ERROR."""
    logger.error(
        "order NOT RECORDED account=%s type=%s source=%s side=%s symbol=%s qty=%s status=%s order_id=%s client_order_id=%s "
        "attempt=%s received_at=%s submitted_at=%s responded_at=%s total_ms=%s broker_ms=%s code=%s",
        account.account_id, record.account_type, record.source, record.side, record.symbol,
        record.qty if record.qty is not None else f"${record.notional}", record.outcome, record.broker_order_id or "-",
        record.client_order_id, record.attempt, iso(record.received_at), iso(record.submitted_at), iso(record.responded_at),
        record.total_ms, record.broker_ms, record.error_code or "-",
    )
