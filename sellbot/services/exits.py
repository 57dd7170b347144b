"""Exit orders: decide, persist the attempt, send it through the order pipeline, follow it up.

An exit order's ``client_order_id`` is ``sb-{position_pk}-{attempt}``, and the attempt is persisted
(with its SellDecision) *before* the order is submitted. A task that dies and runs again finds the
same id: it asks the broker for it and resubmits the same id only when the broker has never seen it,
so a position is never sold twice.
"""
from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.broker import BrokerError, BrokerNotFound, Position, Quote
from accounts.models import AlpacaAccount
from audit.services import audit_record
from opitios.config import SellModuleConfig
from opitios.errors import ApplicationError
from risk.models import State
from risk.states import trading_state_effective
from trading.intents import OPTION, OrderIntent
from trading.services import order_place

from .. import strategy
from ..market import MarketSnapshot
from ..models import DecisionOutcome, ManagedPosition, PositionStatus, SellDecision
from ..selectors import HOLD_PREFIX
from ..strategy import exit_client_order_id, exit_order_shape
from .check_result import AccountCheck, counter_add
from .positions import position_close
from .quotes import _quotes

logger = logging.getLogger("opitios.sellbot")

_NOT_PLACED = (DecisionOutcome.REFUSED, DecisionOutcome.REJECTED, DecisionOutcome.FAILED)


EXIT_CANCELLED_STATUSES = frozenset({"canceled", "expired"})


WORKING_STATUSES = frozenset(
    {"new", "accepted", "pending_new", "partially_filled", "accepted_for_bidding", "pending_cancel", "pending_replace", "held",
     "calculated", "stopped", "suspended"}
)


def _continue_exit(account, mp: ManagedPosition, bp: Position | None, open_by_client_id: dict, broker, config: SellModuleConfig,
                   market_open: bool, result: AccountCheck, worker: str, market: MarketSnapshot | None) -> None:
    """A position with an exit order: leave a working order alone, close a filled one, re-place a dead one."""
    coid = mp.exit_client_order_id
    order = open_by_client_id.get(coid)
    if order is None:
        try:
            order = broker.get_order_by_client_id(coid)
        except BrokerNotFound:
            order = None
        except BrokerError as exc:
            result.add(f"exit_lookup_failed:{exc.code}")
            return
    if order is not None and order.status in WORKING_STATUSES:
        result.add("exits_working")
        return
    now = timezone.now()
    if bp is None or bp.qty == 0:
        position_close(mp, reason=mp.exit_reason or "sold", now=now)
        result.add("closed")
        return
    if not market_open:
        return
    decision_row = SellDecision.objects.filter(client_order_id=coid).first()
    if order is None and decision_row is not None and decision_row.outcome == DecisionOutcome.PENDING:
        # Persisted but never answered (the task died): resubmit the same id; the broker has not seen it.
        _submit_exit(account, decision_row, worker, result)
        return
    if order is not None and order.status in EXIT_CANCELLED_STATUSES:
        # The exit reached the market and did not fill: one step towards the emergency market order.
        # A refusal by the gateway or a broker fault (no order) is retried at the same shape: it says
        # nothing about the price, and must not turn into a market sell that was never tried.
        ManagedPosition.objects.filter(pk=mp.pk).update(exit_cancellations=F("exit_cancellations") + 1)
        mp.refresh_from_db()
    quote = _quotes(account, [mp.symbol], result, market).get(mp.symbol)
    emergency = mp.exit_cancellations >= config.max_exit_attempts
    detail = f"re-place after {mp.exit_cancellations} unfilled exit(s)" + ("; emergency exit" if emergency else "")
    _exit_place(account, mp, bp, quote, config, reason=mp.exit_reason or "replace", detail=detail, decision=None, worker=worker, result=result)


def _exit_place(account, mp: ManagedPosition, bp: Position, quote: Quote | None, config: SellModuleConfig, *, reason: str, detail: str,
                decision: strategy.Decision | None, worker: str, result: AccountCheck) -> None:
    qty = bp.qty_available
    if qty <= 0:
        result.add("no_qty_available")
        return
    if _trading_halted(account, mp.symbol, result):
        return
    emergency = mp.exit_cancellations >= config.max_exit_attempts
    order_type, limit_price = exit_order_shape(quote=quote, config=config, emergency=emergency)
    price = decision.exit_price if decision else strategy.exit_price(quote, bp.current_price)
    pl_pct = decision.pl_pct if decision else (((price / mp.entry_price) - 1) * 100).quantize(Decimal("0.01")) if price and mp.entry_price else None
    with transaction.atomic():
        locked = ManagedPosition.objects.select_for_update().get(pk=mp.pk)
        attempt = locked.exit_attempts + 1
        coid = exit_client_order_id(mp.pk, attempt)
        row = SellDecision.objects.create(
            position=mp, account=account, symbol=mp.symbol, reason=reason, detail=detail[:300], price=price, entry_price=mp.entry_price,
            pl_pct=pl_pct, qty=qty, attempt=attempt, order_type=order_type, limit_price=limit_price, client_order_id=coid,
            decided_at=timezone.now(),
        )
        ManagedPosition.objects.filter(pk=mp.pk).update(
            status=PositionStatus.CLOSING, exit_attempts=attempt, exit_client_order_id=coid, exit_reason=locked.exit_reason or reason,
            last_price=price, last_evaluated_at=timezone.now(),
        )
        audit_record(
            actor_type="sellbot", actor_id=worker or "sellbot", action="sell.decision", account=account, obj=row,
            data={"symbol": mp.symbol, "reason": reason, "detail": detail, "price": _str(price), "entry_price": _str(mp.entry_price),
                  "pl_pct": _str(pl_pct), "qty": _str(qty), "attempt": attempt, "order_type": order_type,
                  "limit_price": _str(limit_price), "client_order_id": coid, "emergency": emergency},
        )
    result.add("decisions")
    _submit_exit(account, row, worker, result)


def _trading_halted(account: AlpacaAccount, symbol: str, result: AccountCheck) -> bool:
    """The kill switch (docs/risk.md): halted places nothing, not even an exit (no decision, no attempt
    used); the hold is counted for /sell. Reducing lets exits through: they only reduce a position."""
    state = trading_state_effective(account=account)
    if state.state != State.HALTED:
        return False
    result.add(f"{HOLD_PREFIX}trading_halted")
    counter_add(name=f"{HOLD_PREFIX}trading_halted")
    logger.warning("sellbot account=%s symbol=%s exit held: trading halted (%s: %s)", account.account_id, symbol, state.scope,
                   state.reason)
    return True


def _str(value) -> str | None:
    return None if value is None else str(value)


def _submit_exit(account: AlpacaAccount, row: SellDecision, worker: str, result: AccountCheck) -> None:
    """Send the decided order through the order pipeline (docs/architecture.md, source=sellbot)."""
    intent = OrderIntent(
        symbol=row.symbol, side="sell", type=row.order_type, time_in_force="day", asset_class=OPTION, qty=row.qty,
        limit_price=row.limit_price, client_order_id=row.client_order_id,
    )
    try:
        placed = order_place(account=account, intent=intent, source="sellbot", user_id=worker or "sellbot")
    except ApplicationError as exc:
        if exc.code == "idempotency_conflict":  # the same id is in flight elsewhere: the next sweep asks again
            result.add("orders_in_flight")
            return
        outcome, broker_id, error = DecisionOutcome.REFUSED, "", f"{exc.code}: {exc.message}"
    else:
        if placed.refusal is None:
            outcome = DecisionOutcome.REPLAYED if placed.replayed else DecisionOutcome.PLACED
            broker_id, error = placed.record.broker_order_id, ""
        else:
            outcome = DecisionOutcome(placed.outcome) if placed.outcome in _NOT_PLACED else DecisionOutcome.FAILED
            broker_id, error = "", f"{placed.refusal.code}: {placed.refusal.message}"
    SellDecision.objects.filter(pk=row.pk).update(outcome=outcome, broker_order_id=broker_id, error=error[:500])
    ok = outcome in (DecisionOutcome.PLACED, DecisionOutcome.REPLAYED)
    result.add(f"orders_{'ok' if ok else 'failed'}")
    log = logger.info if ok else logger.error
    log("sellbot exit account=%s symbol=%s reason=%s attempt=%s type=%s limit=%s qty=%s client_order_id=%s outcome=%s %s",
        account.account_id, row.symbol, row.reason, row.attempt, row.order_type, row.limit_price, row.qty, row.client_order_id, outcome, error)
