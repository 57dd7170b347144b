"""The order flow (SPEC §5), one service for every path: API, quick orders, bulk and the sell bot.

``order_place`` takes ``received_at``, validates, checks the account may trade, reserves the
``(account, client_order_id)`` idempotency key in a short transaction, runs the pre-trade checks,
submits through ``accounts/broker.py`` outside any transaction and finalises the ``OrderRecord``
with its audit event; then writes one ``key=value`` log line. Every attempt that reaches the
reservation leaves a record: accepted, refused by us, rejected by the broker, or failed.
"""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connections, transaction

from accounts import broker as broker_seam
from accounts import crypto
from accounts.balance_refresh import balance_refresh_request
from accounts.broker import BrokerError, BrokerOrder, OrderRequest
from accounts.models import AlpacaAccount, TypeSource
from audit.services import audit_record
from opitios.db import update_by_pk
from opitios.errors import ApplicationError, error_body
from opitios.request_timing import log_after_response

from . import balance as bal
from .bulkhead import order_slot
from .intents import OPTION, OrderIntent, intent_validate
from .models import FINAL_OUTCOMES, OrderRecord, Outcome, Source
from .selectors import balance_settings, trading_config

logger = logging.getLogger("opitios.trading.orders")

# A reservation left pending this long (its process died mid-flight) is treated as failed, so a
# retry can reconcile with the broker instead of being refused forever.
STALE_PENDING = timedelta(seconds=60)

AUDIT_ACTIONS = {
    Outcome.ACCEPTED: "order.submitted",
    Outcome.REFUSED: "order.refused",
    Outcome.REJECTED: "order.rejected",
    Outcome.FAILED: "order.failed",
}

def utcnow() -> datetime:
    return datetime.now(UTC)


def client_order_id_new() -> str:
    return f"opt-{uuid.uuid4().hex}"


@dataclass
class OrderResult:
    http_status: int
    body: dict
    record: OrderRecord | None = None
    headers: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.http_status < 400


@dataclass
class _Refusal:
    code: str
    message: str
    http_status: int
    details: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)


# --- formatting ---------------------------------------------------------------------------


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _num(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def broker_order_json(order: BrokerOrder) -> dict:
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "asset_class": order.asset_class,
        "side": order.side,
        "type": order.type,
        "time_in_force": order.time_in_force,
        "status": order.status,
        "qty": _num(order.qty),
        "notional": _num(order.notional),
        "filled_qty": _num(order.filled_qty),
        "filled_avg_price": _num(order.filled_avg_price),
        "limit_price": _num(order.limit_price),
        "stop_price": _num(order.stop_price),
        "extended_hours": order.extended_hours,
        "created_at": _iso(order.created_at),
        "submitted_at": _iso(order.submitted_at),
        "filled_at": _iso(order.filled_at),
        "canceled_at": _iso(order.canceled_at),
    }


def _intent_json(intent: OrderIntent) -> dict:
    return {
        "symbol": intent.symbol,
        "asset_class": intent.asset_class,
        "side": intent.side,
        "type": intent.type,
        "time_in_force": intent.time_in_force,
        "qty": _num(intent.qty),
        "notional": _num(intent.notional),
        "limit_price": _num(intent.limit_price),
        "stop_price": _num(intent.stop_price),
        "extended_hours": intent.extended_hours,
        "client_order_id": intent.client_order_id,
    }


def _ms(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else round((b - a).total_seconds() * 1000, 3)


def _timing(record: OrderRecord) -> dict:
    return {
        "received_at": _iso(record.received_at),
        "submitted_at": _iso(record.submitted_at),
        "responded_at": _iso(record.responded_at),
        "completed_at": _iso(record.completed_at),
        "total_ms": record.total_ms,
        "broker_ms": record.broker_ms,
        "overhead_ms": record.overhead_ms,
    }


# --- idempotency reservation --------------------------------------------------------------


def _retryable(record: OrderRecord) -> bool:
    """The earlier attempt may or may not have reached the broker, or failed transiently."""
    if record.outcome == Outcome.FAILED:
        return True
    if record.outcome == Outcome.REFUSED and (record.http_status or 0) >= 500:
        return True
    return record.outcome == Outcome.PENDING and record.received_at < utcnow() - STALE_PENDING


def _claim(**values) -> OrderRecord:
    if transaction.get_autocommit():
        return OrderRecord.objects.create(**values)  # one statement, committed on its own
    with transaction.atomic():  # a savepoint in the caller's transaction
        return OrderRecord.objects.create(**values)


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
        status_code=409,
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
        status_code=409,
        details={"client_order_id": intent.client_order_id, "existing": {
            "symbol": current.symbol, "side": current.side, "qty": _num(current.qty), "notional": _num(current.notional),
            "outcome": current.outcome, "broker_order_id": current.broker_order_id or None}},
    )


def _broker_order_matches(order: BrokerOrder, intent: OrderIntent) -> bool:
    if order.symbol != intent.symbol or order.side != intent.side:
        return False
    if intent.qty is not None:
        return order.qty is not None and order.qty == intent.qty
    return order.notional is not None and order.notional == intent.notional


def _replay(record: OrderRecord) -> OrderResult:
    body = dict(record.response or {})
    if "error" in body:
        body["error"] = {**body["error"], "details": {**body["error"].get("details", {}), "replayed": True}}
    else:
        body["replayed"] = True
    headers = {"Idempotent-Replayed": "true"}
    log_after_response(
        logger, logging.INFO,
        "order account=%s type=%s source=%s side=%s symbol=%s qty=%s status=replayed order_id=%s client_order_id=%s",
        record.account.account_id, record.account_type, record.source, record.side, record.symbol,
        record.qty if record.qty is not None else f"${record.notional}", record.broker_order_id or "-", record.client_order_id,
    )
    return OrderResult(record.http_status or 200, body, record, headers)


# --- pre-trade checks ----------------------------------------------------------------------


def _account_refusal(account: AlpacaAccount) -> _Refusal | None:
    if not account.enabled:
        return _Refusal("account_disabled", f"Account {account.account_id} is disabled; orders are refused.", 422)
    if account.config_error:
        return _Refusal(
            "account_config_invalid",
            f"Account {account.account_id}'s entry in secrets.yml is invalid; orders are refused until it is valid "
            f"and synced again: {account.config_error}",
            422,
            {"reason": account.config_error},
        )
    if account.type_mismatch:
        return _Refusal(
            "account_type_mismatch",
            f"Account {account.account_id} is configured as {'paper' if account.paper_trading else 'live'} but detected as "
            f"{account.account_type}; orders are refused until the configuration is corrected.",
            422,
            {"configured_paper": account.paper_trading, "account_type": account.account_type},
        )
    if account.type_source == TypeSource.UNKNOWN:
        return _Refusal(
            "account_type_undetected",
            f"Account {account.account_id}'s paper/live type has not been detected yet; retry shortly.",
            422, {"configured_paper": account.paper_trading}, {"Retry-After": "5"},
        )
    if account.type_source == TypeSource.FALLBACK and not account.paper_trading:
        # SPEC §4's safe mode labels a failed detection "paper", but a live-configured account's
        # orders still go to the live endpoint: real-money orders would be recorded as paper. We
        # cannot label them truthfully, so they are refused until a detection succeeds.
        return _Refusal(
            "account_type_unverified",
            f"Account {account.account_id} is configured as live but its type could not be verified "
            f"({account.detection_error or 'detection failed'}); orders are refused until detection succeeds.",
            422, {"configured_paper": False, "type_source": account.type_source},
        )
    return None


def _reference_price(*, account: AlpacaAccount, intent: OrderIntent) -> Decimal | None:
    price = intent.limit_price or intent.stop_price
    if price is not None:
        return price
    md = broker_seam.market_data()
    quotes = (md.option_quotes if intent.asset_class == OPTION else md.stock_quotes)([intent.symbol], account_id=account.account_id)
    quote = quotes.get(intent.symbol)
    if quote is None:
        return None
    return (quote.ask if intent.side == "buy" else quote.bid) or quote.ask or quote.bid


def _limit_refusal(*, account: AlpacaAccount, intent: OrderIntent) -> _Refusal | None:
    """The optional ``trading.max_order_qty`` and ``max_order_notional`` caps (400)."""
    cfg = trading_config()
    if cfg.max_order_qty is not None and intent.qty is not None and intent.qty > cfg.max_order_qty:
        return _Refusal(
            "order_limit_exceeded", f"qty {intent.qty} exceeds the maximum order quantity {cfg.max_order_qty}.", 400,
            {"max_order_qty": str(cfg.max_order_qty)},
        )
    if cfg.max_order_notional is None:
        return None
    notional = intent.notional
    if notional is None:
        try:
            price = _reference_price(account=account, intent=intent)
        except BrokerError:
            price = None
        if price is None:
            return _Refusal(
                "price_unavailable", f"No price for {intent.symbol} to check the maximum order notional; retry shortly.", 503,
                headers={"Retry-After": "1"},
            )
        notional = intent.qty * price * intent.multiplier
    if notional > cfg.max_order_notional:
        return _Refusal(
            "order_limit_exceeded",
            f"Order notional {bal.dollars(notional)} exceeds the maximum order notional {bal.dollars(cfg.max_order_notional)}.",
            400,
            {"max_order_notional": str(cfg.max_order_notional), "notional": f"{notional:.2f}"},
        )
    return None


def _balance_refusal(account: AlpacaAccount, check: bal.BalanceCheck) -> _Refusal | None:
    if not check.refused:
        return None
    if check.status == bal.UNVERIFIED:
        return _Refusal(
            "balance_unverified",
            f"The cash of account {account.account_id} could not be verified ({check.fetch_error}); "
            "orders are refused while balance_check_fail_closed is on.",
            503,
            headers={"Retry-After": "5"},
        )
    return _Refusal(
        "insufficient_balance",
        bal.insufficient_message(account.account_id, check.cash, check.minimum_balance),
        422,
    )


# --- finalising ------------------------------------------------------------------------------


def _finalise(
    record: OrderRecord,
    *,
    account: AlpacaAccount,
    intent: OrderIntent,
    outcome: str,
    http_status: int,
    check: bal.BalanceCheck | None,
    order: BrokerOrder | None = None,
    refusal: _Refusal | None = None,
    extra: dict | None = None,
) -> OrderResult:
    record._finalising = True  # from here a failure is the outcome's write, not the placement
    record.completed_at = utcnow()
    record.total_ms = _ms(record.received_at, record.completed_at)
    record.broker_ms = _ms(record.submitted_at, record.responded_at)
    record.overhead_ms = None if record.total_ms is None else round(record.total_ms - (record.broker_ms or 0.0), 3)
    if record.recovered:  # the broker's own time for the order is not known: the answer was lost
        record.broker_ms = record.overhead_ms = None
    record.outcome = outcome
    record.http_status = http_status
    record.balance_status = check.status if check else ""
    account_json = {"id": account.account_id, "type": account.account_type}
    checks = {"balance": check.as_json()} if check else {}
    if order is not None:
        record.broker_order_id = order.id
        record.broker_status = order.status
        body = {**broker_order_json(order), "account": account_json, "source": record.source, "checks": checks,
                "timing": _timing(record), "replayed": False, **(extra or {})}
    else:
        record.error_code, record.error_message = refusal.code, refusal.message[:500]
        details = {"client_order_id": record.client_order_id, "order": _intent_json(intent), "account": account_json,
                   "checks": checks, "timing": _timing(record), "replayed": False, **refusal.details}
        body = error_body(refusal.code, refusal.message, details)
    record.response = body

    audit_data = {
        "client_order_id": record.client_order_id,
        "order": _intent_json(intent),
        "outcome": outcome,
        "http_status": http_status,
        "broker_order_id": record.broker_order_id or None,
        "error": None if refusal is None else {"code": refusal.code, "message": refusal.message},
        "checks": checks,
        "timing": _timing(record),
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
    headers = dict(refusal.headers) if refusal else {}
    return OrderResult(http_status, body, record, headers)


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
                   "http_status", "balance_status", "broker_order_id", "broker_status", "error_code", "error_message", "response")


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
                         alongside=None if index else update_by_pk(record, _OUTCOME_FIELDS))
    if outcome == Outcome.ACCEPTED:
        # Coalesced per account and sent from a background thread: no Celery message on the request path.
        transaction.on_commit(lambda pk=account.pk: balance_refresh_request(account_pk=pk))


def _log_line(record: OrderRecord, account: AlpacaAccount, refusal: _Refusal | None) -> None:
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
        record.client_order_id, record.attempt, _iso(record.received_at), _iso(record.submitted_at), _iso(record.responded_at),
        record.total_ms, record.broker_ms, record.error_code or "-",
    )


def _broker_refusal(exc: BrokerError) -> tuple[str, _Refusal]:
    headers = {}
    details = {}
    if exc.retry_after:
        headers["Retry-After"] = str(exc.retry_after)
        details["retry_after_seconds"] = exc.retry_after
    if exc.upstream_code:
        details["upstream_code"] = exc.upstream_code
    outcome = Outcome.REJECTED if exc.http_status in (404, 422) else Outcome.FAILED
    return outcome, _Refusal(exc.code, exc.message or exc.code, exc.http_status, details, headers)


# --- the service -------------------------------------------------------------------------------


def order_place(
    *,
    account: AlpacaAccount,
    intent: OrderIntent,
    source: str,
    user_id: str,
    received_at: datetime | None = None,
    slot_wait: float | None = None,
) -> OrderResult:
    """Place one order on one account through the full SPEC §5 flow. Never raises for a broker
    fault or a rule: the result carries the HTTP status and body. Raises ``ApplicationError``
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
            status_code=409,
            headers={"Retry-After": "1"},
        )

    def refuse(refusal: _Refusal, check: bal.BalanceCheck | None = None) -> OrderResult:
        return _finalise(record, account=account, intent=intent, outcome=Outcome.REFUSED, http_status=refusal.http_status,
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
            refusal = _Refusal("broker_error", f"The credentials of account {account.account_id} cannot be used.", 502)
        elif isinstance(exc, (OperationalError, InterfaceError)):
            refusal = _Refusal("database_unavailable", "The database is unavailable; retry shortly.", 503, headers={"Retry-After": "5"})
        else:
            refusal = _Refusal("internal_error", f"Unexpected failure ({exc.__class__.__name__}); retry with the same client_order_id.", 500)
        if record.submitted_at is not None and record.responded_at is None:
            record.responded_at = utcnow()
        return _finalise(record, account=account, intent=intent, outcome=Outcome.FAILED, http_status=refusal.http_status,
                         check=None, refusal=refusal)


def _place_reserved(*, record: OrderRecord, account: AlpacaAccount, intent: OrderIntent, mode: str, refuse,
                    slot_wait: float | None) -> OrderResult:
    refusal = _account_refusal(account)
    if refusal:
        return refuse(refusal)
    wait = settings.BROKER_ORDER_SLOT_WAIT if slot_wait is None else slot_wait
    with order_slot(wait=wait) as acquired:
        if not acquired:
            return refuse(_Refusal(
                "broker_busy",
                "Too many orders are waiting on the broker in this process; retry shortly with the same client_order_id.",
                503, {"max_in_flight": settings.BROKER_ORDER_CONCURRENCY}, {"Retry-After": "1"},
            ))
        return _place_at_broker(record=record, account=account, intent=intent, mode=mode, refuse=refuse)


def _place_at_broker(*, record: OrderRecord, account: AlpacaAccount, intent: OrderIntent, mode: str, refuse) -> OrderResult:
    """Steps 4 (retry reconciliation) to 7 of the flow: every broker call of one order, in one bulkhead slot."""
    try:
        broker = broker_seam.broker_for(account)
    except BrokerError as exc:
        outcome, refusal = _broker_refusal(exc)
        return _finalise(record, account=account, intent=intent, outcome=Outcome.FAILED, http_status=refusal.http_status,
                         check=None, refusal=refusal)

    if mode == "retry":
        # The earlier attempt may have reached the broker: ask before sending again.
        record.submitted_at = utcnow()
        try:
            existing = broker.get_order_by_client_id(intent.client_order_id)
        except BrokerError as exc:
            record.responded_at = utcnow()
            outcome, refusal = _broker_refusal(exc)
            return _finalise(record, account=account, intent=intent, outcome=Outcome.FAILED, http_status=refusal.http_status,
                             check=None, refusal=refusal)
        if existing is not None:
            record.responded_at = utcnow()
            return _recover(record, account=account, intent=intent, existing=existing, check=None)
        record.submitted_at = None

    refusal = _limit_refusal(account=account, intent=intent)
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

    request = OrderRequest(
        symbol=intent.symbol,
        side=intent.side,
        type=intent.type,
        time_in_force=intent.time_in_force,
        client_order_id=intent.client_order_id,
        asset_class=intent.asset_class,
        qty=intent.qty,
        notional=intent.notional,
        limit_price=intent.limit_price,
        stop_price=intent.stop_price,
        extended_hours=intent.extended_hours,
    )
    record.submitted_at = utcnow()
    try:
        order = broker.submit_order(request)
    except BrokerError as exc:
        record.responded_at = utcnow()
        if _duplicate_client_order_id(exc):
            # The order exists upstream (an earlier attempt whose answer was lost, not yet visible when
            # the retry asked): it is live, never "rejected". Finalise from the broker's copy.
            return _recover_duplicate(record, account=account, intent=intent, check=check, exc=exc, broker=broker)
        outcome, refusal = _broker_refusal(exc)
        return _finalise(record, account=account, intent=intent, outcome=outcome, http_status=refusal.http_status,
                         check=check, refusal=refusal)
    except Exception as exc:  # a fault in the seam must still leave a record and a 502, never a 500
        record.responded_at = utcnow()
        logger.exception("broker submit raised unexpectedly account=%s", account.account_id)
        refusal = _Refusal("broker_error", f"Unexpected broker failure ({exc.__class__.__name__}).", 502)
        return _finalise(record, account=account, intent=intent, outcome=Outcome.FAILED, http_status=502, check=check,
                         refusal=refusal)
    record.responded_at = utcnow()
    return _finalise(record, account=account, intent=intent, outcome=Outcome.ACCEPTED, http_status=201, check=check, order=order)


def _duplicate_client_order_id(exc: BrokerError) -> bool:
    """Alpaca's (and alpacasim's) 422 "client_order_id must be unique"."""
    message = (exc.message or "").lower()
    return exc.upstream_status == 422 and "client_order_id" in message and "unique" in message


def _recover(record: OrderRecord, *, account: AlpacaAccount, intent: OrderIntent, existing: BrokerOrder,
             check: bal.BalanceCheck | None) -> OrderResult:
    """Finalise from the order the broker already holds under this client_order_id, if it is this order."""
    if not _broker_order_matches(existing, intent):
        # The broker holds a different order under this id: it is not ours to "recover".
        return _finalise(record, account=account, intent=intent, outcome=Outcome.REFUSED, http_status=409, check=check,
                         refusal=_Refusal(
                             "idempotency_conflict",
                             f"client_order_id {intent.client_order_id} is already used at the broker by a different order "
                             f"({existing.side} {existing.qty or existing.notional} {existing.symbol}); use a new client_order_id.",
                             409, {"broker_order_id": existing.id}))
    # When the order reached the broker is the broker's submitted_at, not the time we asked about it.
    record.submitted_at = existing.submitted_at or existing.created_at or record.submitted_at
    record.recovered = True
    return _finalise(record, account=account, intent=intent, outcome=Outcome.ACCEPTED, http_status=201, check=check,
                     order=existing, extra={"recovered": True})


def _recover_duplicate(record: OrderRecord, *, account: AlpacaAccount, intent: OrderIntent, check: bal.BalanceCheck | None,
                       exc: BrokerError, broker) -> OrderResult:
    try:
        existing = broker.get_order_by_client_id(intent.client_order_id)
    except BrokerError as lookup:
        existing, exc = None, lookup
    if existing is None:  # uncertain, not final: a retry with the same id asks again
        refusal = _Refusal("broker_error", f"The broker reports client_order_id {intent.client_order_id} in use but could "
                           f"not return it ({exc.message or exc.code}); retry with the same client_order_id.", 502)
        return _finalise(record, account=account, intent=intent, outcome=Outcome.FAILED, http_status=502, check=check,
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
    return {"id": order_id, "status": "pending_cancel", "account": {"id": account.account_id, "type": account.account_type}}


def _bulk_one(account: AlpacaAccount, intent: OrderIntent, user_id: str, received_at: datetime) -> dict:
    try:
        # Bulk runs on its own pool threads, not request threads: it waits for a bulkhead slot.
        result = order_place(account=account, intent=intent, source=Source.BULK, user_id=user_id, received_at=received_at,
                             slot_wait=settings.BROKER_CONNECT_TIMEOUT + settings.BROKER_READ_TIMEOUT)
        return {"account_id": account.account_id, "status_code": result.http_status, **(
            {"order": result.body} if result.ok else {"error": result.body["error"]})}
    except ApplicationError as exc:
        return {"account_id": account.account_id, "status_code": exc.status_code, "error": error_body(exc.code, exc.message, exc.details)["error"]}
    except Exception as exc:
        logger.exception("bulk order failed account=%s", account.account_id)
        return {"account_id": account.account_id, "status_code": 500,
                "error": error_body("internal_error", f"Unexpected failure ({exc.__class__.__name__}).")["error"]}


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
        return {"client_order_id": intent.client_order_id, "results": [], "summary": {"accounts": 0, "accepted": 0, "not_accepted": 0}}
    if len(accounts) == 1 or not transaction.get_autocommit():
        results = [_bulk_one(a, intent, user_id, received_at) for a in accounts]
    else:
        with ThreadPoolExecutor(max_workers=min(BULK_WORKERS, len(accounts)), thread_name_prefix="bulk-order") as pool:
            results = list(pool.map(lambda a: _bulk_one_in_thread(a, intent, user_id, received_at), accounts))
    accepted = sum(1 for r in results if r["status_code"] < 400)
    return {"client_order_id": intent.client_order_id, "results": results,
            "summary": {"accounts": len(results), "accepted": accepted, "not_accepted": len(results) - accepted}}
