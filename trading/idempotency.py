"""The ``(account, client_order_id)`` idempotency reservation of the order pipeline: claim, retry,
replay or refuse a key (docs/architecture.md, "The order pipeline")."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from accounts.broker import BrokerOrder
from accounts.models import AlpacaAccount
from opitios.db import insert
from opitios.errors import ApplicationError
from opitios.formats import num
from opitios.request_timing import log_after_response

from .intents import OrderIntent
from .models import FINAL_OUTCOMES, OrderRecord, Outcome
from .order_classes import record_class_fields
from .outcome import utcnow
from .results import Placement, Refusal
from .selectors import order_record_by_broker_id

logger = logging.getLogger("opitios.trading.orders")

# A reservation left pending this long (its process died mid-flight) is treated as failed, so a
# retry can reconcile with the broker instead of being refused forever.
STALE_PENDING = timedelta(seconds=60)


def _retryable(record: OrderRecord) -> bool:
    """The earlier attempt may or may not have reached the broker, or failed transiently."""
    if record.outcome == Outcome.FAILED:
        return True
    if record.outcome == Outcome.REFUSED and (record.http_status or 0) >= 500:
        return True
    return record.outcome == Outcome.PENDING and record.received_at < utcnow() - STALE_PENDING


def _claim(**values) -> OrderRecord:
    record = OrderRecord(**values)
    if transaction.get_autocommit():
        insert(record)  # one statement, committed on its own
        return record
    with transaction.atomic():  # a savepoint in the caller's transaction
        insert(record)
    return record


def _reserve(*, account: AlpacaAccount, intent: OrderIntent, source: str, user_id: str, received_at: datetime):
    """Claim the idempotency key. Returns (record, mode) with mode new | retry | replay | in_flight."""
    fields = {
        "account_type": account.account_type,
        "source": source,
        "user_id": user_id[:128],
        "symbol": intent.symbol,
        "asset_class": intent.asset_class,
        "side": intent.side,
        "order_type": intent.type,
        "time_in_force": intent.time_in_force,
        "qty": intent.qty,
        "notional": intent.notional,
        "limit_price": intent.limit_price,
        "stop_price": intent.stop_price,
        "extended_hours": intent.extended_hours,
        "auto_sell_enabled": intent.auto_sell_enabled,
        "received_at": received_at,
        "intent_hash": intent.fingerprint,
        **record_class_fields(intent),
        "replaces": order_record_by_broker_id(account=account, broker_order_id=intent.replaces) if intent.replaces else None,
    }
    # The common case first: a key never seen. One INSERT (committed on its own in autocommit
    # mode) claims it; the partial unique index refuses a second current row for the key, and
    # only then is the existing row read and locked below.
    try:
        return _claim(account=account, client_order_id=intent.client_order_id, **fields), "new"
    except IntegrityError:
        pass
    for _ in range(3):
        try:
            with transaction.atomic():
                current = (
                    OrderRecord.objects.select_for_update()
                    .filter(account=account, client_order_id=intent.client_order_id, is_current=True)
                    .first()
                )
                if current is None:
                    return OrderRecord.objects.create(account=account, client_order_id=intent.client_order_id, **fields), "new"
                if current.fingerprint != fields["intent_hash"]:
                    raise _conflict(account, intent, current)
                if current.outcome in FINAL_OUTCOMES and not _retryable(current):
                    return current, "replay"
                if not _retryable(current):
                    return current, "in_flight"
                OrderRecord.objects.filter(pk=current.pk).update(is_current=False)
                record = OrderRecord.objects.create(
                    account=account, client_order_id=intent.client_order_id, attempt=current.attempt + 1, **fields
                )
                return record, "retry"
        except IntegrityError:
            continue  # a concurrent request inserted the same key first: read it again
    raise ApplicationError(
        "idempotency_conflict",
        f"An order with client_order_id {intent.client_order_id} is being placed concurrently; retry shortly.",
    )


def _conflict(account: AlpacaAccount, intent: OrderIntent, current: OrderRecord) -> ApplicationError:
    """The client_order_id is taken by a different order: never replay it as if this one was placed."""
    logger.warning(
        "order account=%s side=%s symbol=%s status=idempotency_conflict client_order_id=%s existing_side=%s existing_symbol=%s",
        account.account_id, intent.side, intent.symbol, intent.client_order_id, current.side, current.symbol,
    )
    return ApplicationError(
        "idempotency_conflict",
        f"client_order_id {intent.client_order_id} on {account.account_id} was already used for a different order; "
        "use a new client_order_id.",
        details={"client_order_id": intent.client_order_id, "existing": {
            "symbol": current.symbol, "side": current.side, "qty": num(current.qty), "notional": num(current.notional),
            "outcome": current.outcome, "broker_order_id": current.broker_order_id or None}},
    )


def _broker_order_matches(order: BrokerOrder, intent: OrderIntent) -> bool:
    if order.symbol != intent.symbol or order.side != intent.side:
        return False
    if intent.qty is not None:
        return order.qty is not None and order.qty == intent.qty
    return order.notional is not None and order.notional == intent.notional


def _replay(record: OrderRecord) -> Placement:
    body = dict(record.response or {})
    if "error" in body:
        body["error"] = {**body["error"], "details": {**body["error"].get("details", {}), "replayed": True}}
    else:
        body["replayed"] = True
    log_after_response(
        logger, logging.INFO,
        "order account=%s type=%s source=%s side=%s symbol=%s qty=%s status=replayed order_id=%s client_order_id=%s",
        record.account.account_id, record.account_type, record.source, record.side, record.symbol,
        record.qty if record.qty is not None else f"${record.notional}", record.broker_order_id or "-", record.client_order_id,
    )
    error = body.get("error")
    refusal = Refusal(error["code"], error["message"], error.get("details", {})) if error else None
    return Placement(record.outcome, record, body, refusal=refusal, replayed=True)


