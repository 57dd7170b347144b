"""The order flow (docs/architecture.md, "The order pipeline"), one service for every path: API,
quick orders, bulk and the sell bot.

``order_place`` takes ``received_at``, validates, checks the account may trade, reserves the
``(account, client_order_id)`` idempotency key (``idempotency.py``) in a short transaction, runs the
pre-trade checks (``checks.py``), submits through ``accounts/broker/`` outside any transaction and
finalises the ``OrderRecord`` with its audit event and log line (``outcome.py``). It returns a
``Placement`` (``results.py``); the edge renders it (``errors.py``). Every attempt that reaches the
reservation leaves a record: accepted, refused by us, rejected by the broker, or failed.
"""
from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction

from accounts import broker as broker_seam
from accounts import crypto
from accounts.broker import BrokerError, BrokerOrder
from accounts.models import AlpacaAccount
from audit.services import audit_record
from opitios.errors import ApplicationError

from . import balance as bal
from .bulkhead import order_slot
from .checks import _account_refusal, _balance_refusal, _order_refusal
from .errors import _broker_refusal, exception_item, placement_item
from .formatting import broker_order_json, bulk_item_json, bulk_json, cancel_result_json
from .idempotency import _broker_order_matches, _replay, _reserve
from .intents import OrderIntent, intent_validate
from .models import OrderRecord, Outcome, Source
from .outcome import _finalise, order_outcome_write, utcnow
from .results import Placement, Refusal
from .selectors import balance_settings
from .submission import broker_send

logger = logging.getLogger("opitios.trading.orders")

# Public names other code imports from here (the modules split out of this one).
__all__ = ["Placement", "broker_order_json", "client_order_id_new", "order_cancel", "order_outcome_write", "order_place",
           "orders_bulk_place", "utcnow"]


def client_order_id_new() -> str:
    return f"opt-{uuid.uuid4().hex}"


# --- the service -------------------------------------------------------------------------------


def order_place(
    *,
    account: AlpacaAccount,
    intent: OrderIntent,
    source: str,
    user_id: str,
    received_at: datetime | None = None,
    slot_wait: float | None = None,
) -> Placement:
    """Place one order on one account through the full flow. Never raises for a broker fault or a
    rule: the ``Placement`` carries the outcome, the refusal and the stored answer. Raises ``ApplicationError``
    (400) only for invalid input, before any record exists, and 409 for a concurrent duplicate.
    ``slot_wait``: seconds to wait for a bulkhead slot (trading/bulkhead.py); default BROKER_ORDER_SLOT_WAIT."""
    received_at = received_at or utcnow()
    intent_validate(intent)
    if not intent.client_order_id:
        intent = intent.with_client_order_id(client_order_id_new())

    record, mode = _reserve(account=account, intent=intent, source=source, user_id=user_id, received_at=received_at)
    if mode == "replay":
        return _replay(record)
    if mode == "in_flight":
        raise ApplicationError(
            "idempotency_conflict",
            f"An order with client_order_id {intent.client_order_id} on {account.account_id} is still in progress; retry shortly.",
            headers={"Retry-After": "1"},
        )

    def refuse(refusal: Refusal, check: bal.BalanceCheck | None = None) -> Placement:
        return _finalise(record, account=account, intent=intent, outcome=Outcome.REFUSED,
                         check=check, refusal=refusal)

    try:
        return _place_reserved(record=record, account=account, intent=intent, mode=mode, refuse=refuse, slot_wait=slot_wait)
    except Exception as exc:
        if getattr(record, "_finalising", False):
            raise  # the outcome itself could not be written (logged by _finalise); nothing more to record
        # Anything unexpected between the reservation and the outcome (an undecryptable credential,
        # a database outage or error while checking the balance, a bug) still ends the attempt: a
        # FAILED record with its audit event and log line, never a pending row and a bare 500.
        if isinstance(exc, (OperationalError, InterfaceError)):
            # The connection went (a PostgreSQL restart): an outage, answered as opitios.errors does.
            logger.error("order placement stopped, database unavailable account=%s client_order_id=%s error=%s",
                         account.account_id, intent.client_order_id, exc.__class__.__name__)
        else:
            logger.exception("order placement raised unexpectedly account=%s client_order_id=%s", account.account_id,
                             intent.client_order_id)
        if isinstance(exc, crypto.CredentialError):
            refusal = Refusal("broker_error", f"The credentials of account {account.account_id} cannot be used.")
        elif isinstance(exc, (OperationalError, InterfaceError)):
            refusal = Refusal("database_unavailable", "The database is unavailable; retry shortly.")
        else:
            refusal = Refusal("internal_error", f"Unexpected failure ({exc.__class__.__name__}); retry with the same client_order_id.")
        if record.submitted_at is not None and record.responded_at is None:
            record.responded_at = utcnow()
        return _finalise(record, account=account, intent=intent, outcome=Outcome.FAILED,
                         check=None, refusal=refusal)


def _place_reserved(*, record: OrderRecord, account: AlpacaAccount, intent: OrderIntent, mode: str, refuse,
                    slot_wait: float | None) -> Placement:
    refusal = _account_refusal(account)
    if refusal:
        return refuse(refusal)
    wait = settings.BROKER_ORDER_SLOT_WAIT if slot_wait is None else slot_wait
    with order_slot(wait=wait) as acquired:
        if not acquired:
            return refuse(Refusal(
                "broker_busy",
                "Too many orders are waiting on the broker in this process; retry shortly with the same client_order_id.",
                {"max_in_flight": settings.BROKER_ORDER_CONCURRENCY},
            ))
        return _place_at_broker(record=record, account=account, intent=intent, mode=mode, refuse=refuse)


def _place_at_broker(*, record: OrderRecord, account: AlpacaAccount, intent: OrderIntent, mode: str, refuse) -> Placement:
    """Steps 4 (retry reconciliation) to 7 of the flow: every broker call of one order, in one bulkhead slot."""
    try:
        broker = broker_seam.broker_for(account)
    except BrokerError as exc:
        outcome, refusal = _broker_refusal(exc)
        return _finalise(record, account=account, intent=intent, outcome=Outcome.FAILED,
                         check=None, refusal=refusal)

    if mode == "retry":
        # The earlier attempt may have reached the broker: ask before sending again.
        record.submitted_at = utcnow()
        try:
            existing = broker.get_order_by_client_id(intent.client_order_id)
        except BrokerError as exc:
            record.responded_at = utcnow()
            outcome, refusal = _broker_refusal(exc)
            return _finalise(record, account=account, intent=intent, outcome=Outcome.FAILED,
                             check=None, refusal=refusal)
        if existing is not None:
            record.responded_at = utcnow()
            return _recover(record, account=account, intent=intent, existing=existing, check=None)
        record.submitted_at = None

    refusal = _order_refusal(account=account, intent=intent, broker=broker)
    if refusal:
        return refuse(refusal)

    effective = balance_settings(account)
    check = bal.balance_check(account=account, broker=broker, intent=intent, settings=effective, now=utcnow())
    if check.status == bal.UNVERIFIED:
        logger.error(
            "balance unverified account=%s fail_closed=%s error=%s", account.account_id, effective.fail_closed, check.fetch_error
        )
    refusal = _balance_refusal(account, check)
    if refusal:
        return refuse(refusal, check)

    record.submitted_at = utcnow()
    try:
        order = broker_send(broker, intent)  # a new order, or a replacement (PATCH) when intent.replaces
    except BrokerError as exc:
        record.responded_at = utcnow()
        if _duplicate_client_order_id(exc):
            # The order exists upstream (an earlier attempt whose answer was lost, not yet visible when
            # the retry asked): it is live, never "rejected". Finalise from the broker's copy.
            return _recover_duplicate(record, account=account, intent=intent, check=check, exc=exc, broker=broker)
        outcome, refusal = _broker_refusal(exc)
        return _finalise(record, account=account, intent=intent, outcome=outcome,
                         check=check, refusal=refusal)
    except Exception as exc:  # a fault in the seam must still leave a record and a 502, never a 500
        record.responded_at = utcnow()
        logger.exception("broker submit raised unexpectedly account=%s", account.account_id)
        refusal = Refusal("broker_error", f"Unexpected broker failure ({exc.__class__.__name__}).")
        return _finalise(record, account=account, intent=intent, outcome=Outcome.FAILED, check=check,
                         refusal=refusal)
    record.responded_at = utcnow()
    return _finalise(record, account=account, intent=intent, outcome=Outcome.ACCEPTED, check=check, order=order)


def _duplicate_client_order_id(exc: BrokerError) -> bool:
    """Alpaca's (and alpacasim's) 422 "client_order_id must be unique"."""
    message = (exc.message or "").lower()
    return exc.upstream_status == 422 and "client_order_id" in message and "unique" in message


def _recover(record: OrderRecord, *, account: AlpacaAccount, intent: OrderIntent, existing: BrokerOrder,
             check: bal.BalanceCheck | None) -> Placement:
    """Finalise from the order the broker already holds under this client_order_id, if it is this order."""
    if not _broker_order_matches(existing, intent):
        # The broker holds a different order under this id: it is not ours to "recover".
        return _finalise(record, account=account, intent=intent, outcome=Outcome.REFUSED, check=check,
                         refusal=Refusal(
                             "idempotency_conflict",
                             f"client_order_id {intent.client_order_id} is already used at the broker by a different order "
                             f"({existing.side} {existing.qty or existing.notional} {existing.symbol}); use a new client_order_id.",
                             {"broker_order_id": existing.id}))
    # When the order reached the broker is the broker's submitted_at, not the time we asked about it.
    record.submitted_at = existing.submitted_at or existing.created_at or record.submitted_at
    record.recovered = True
    return _finalise(record, account=account, intent=intent, outcome=Outcome.ACCEPTED, check=check,
                     order=existing, extra={"recovered": True})


def _recover_duplicate(record: OrderRecord, *, account: AlpacaAccount, intent: OrderIntent, check: bal.BalanceCheck | None,
                       exc: BrokerError, broker) -> Placement:
    try:
        existing = broker.get_order_by_client_id(intent.client_order_id)
    except BrokerError as lookup:
        existing, exc = None, lookup
    if existing is None:  # uncertain, not final: a retry with the same id asks again
        refusal = Refusal("broker_error", f"The broker reports client_order_id {intent.client_order_id} in use but could "
                           f"not return it ({exc.message or exc.code}); retry with the same client_order_id.")
        return _finalise(record, account=account, intent=intent, outcome=Outcome.FAILED, check=check,
                         refusal=refusal)
    return _recover(record, account=account, intent=intent, existing=existing, check=check)


def order_cancel(*, account: AlpacaAccount, order_id: str, user_id: str, actor_type: str = "user") -> dict:
    """Cancel one order; raises the broker's error (mapped by the view) when it cannot. Both outcomes
    are audited; a success updates the OrderRecord and writes its audit event in one transaction.

    Cancels are allowed on accounts that may not place orders (mismatched, type unknown or
    unverified): cancelling only reduces risk, and refusing it could leave an unwanted order working.
    They are logged at WARNING."""
    if not account.tradable:
        logger.warning("order cancel on an account that may not trade account=%s mismatch=%s type_source=%s order_id=%s: "
                       "allowed, cancelling reduces risk", account.account_id, account.type_mismatch, account.type_source, order_id)
    record = OrderRecord.objects.filter(account=account, broker_order_id=order_id).order_by("-received_at").first()
    data = {"order_id": order_id, "client_order_id": record.client_order_id if record else None, "account_type": account.account_type}
    try:
        broker_seam.broker_for(account).cancel_order(order_id)
    except BrokerError as exc:
        audit_record(actor_type=actor_type, actor_id=user_id, action="order.cancel_failed", account=account, obj=record,
                     data={**data, "error": {"code": exc.code, "message": exc.message, "http_status": exc.http_status}})
        logger.warning("order cancel failed account=%s type=%s order_id=%s user=%s code=%s", account.account_id,
                       account.account_type, order_id, user_id, exc.code)
        raise
    with transaction.atomic():
        OrderRecord.objects.filter(account=account, broker_order_id=order_id).update(broker_status="pending_cancel")
        audit_record(actor_type=actor_type, actor_id=user_id, action="order.cancelled", account=account, obj=record, data=data)
    logger.info("order cancel account=%s type=%s order_id=%s user=%s", account.account_id, account.account_type, order_id, user_id)
    return cancel_result_json({"id": order_id, "status": "pending_cancel", "account": account})


def _bulk_one(account: AlpacaAccount, intent: OrderIntent, user_id: str, received_at: datetime) -> dict:
    try:
        # Bulk runs on its own pool threads, not request threads: it waits for a bulkhead slot.
        placement = order_place(account=account, intent=intent, source=Source.BULK, user_id=user_id, received_at=received_at,
                                slot_wait=settings.BROKER_CONNECT_TIMEOUT + settings.BROKER_READ_TIMEOUT)
        return bulk_item_json({"account_id": account.account_id, **placement_item(placement)})
    except ApplicationError as exc:
        return bulk_item_json({"account_id": account.account_id, **exception_item(exc)})
    except Exception as exc:
        logger.exception("bulk order failed account=%s", account.account_id)
        return bulk_item_json({"account_id": account.account_id, **exception_item(exc)})


def _bulk_one_in_thread(account: AlpacaAccount, intent: OrderIntent, user_id: str, received_at: datetime) -> dict:
    try:
        return _bulk_one(account, intent, user_id, received_at)
    finally:
        connections.close_all()  # this pool thread's own connections


BULK_WORKERS = 16


def orders_bulk_place(*, accounts: list[AlpacaAccount], intent: OrderIntent, user_id: str, received_at: datetime | None = None) -> dict:
    """The same order on each account, concurrently (a bounded pool), each through ``order_place``."""
    received_at = received_at or utcnow()
    intent_validate(intent)
    if not intent.client_order_id:
        # One id for the whole bulk (ids are scoped per account), returned so that a client retrying
        # the bulk with it replays each account's order instead of placing a second one everywhere.
        # Not the reserved opt- prefix: the client must be able to send it back.
        intent = intent.with_client_order_id(f"bulk-{uuid.uuid4().hex}")
    if not accounts:
        return bulk_json({"client_order_id": intent.client_order_id, "results": [],
                          "summary": {"accounts": 0, "accepted": 0, "not_accepted": 0}})
    if len(accounts) == 1 or not transaction.get_autocommit():
        results = [_bulk_one(a, intent, user_id, received_at) for a in accounts]
    else:
        with ThreadPoolExecutor(max_workers=min(BULK_WORKERS, len(accounts)), thread_name_prefix="bulk-order") as pool:
            results = list(pool.map(lambda a: _bulk_one_in_thread(a, intent, user_id, received_at), accounts))
    accepted = sum(1 for r in results if r["status_code"] < 400)
    return bulk_json({"client_order_id": intent.client_order_id, "results": results,
                      "summary": {"accounts": len(results), "accepted": accepted, "not_accepted": len(results) - accepted}})
