"""Order management beyond one order (docs/risk.md): cancel every open order of an account, close a
position or all of them, and flatten accounts.

Closes are market day orders placed through ``services.order_place``, so each has its
``OrderRecord``, its pre-trade checks (a close reduces, so ``reducing`` lets it through), its audit
event and its log line. Cancels go through ``services.order_cancel`` (audited one by one).
"""
from __future__ import annotations

import hashlib
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.db import connections, transaction

from accounts import broker as broker_seam
from accounts.broker import BrokerError, Position
from accounts.models import AlpacaAccount
from audit.services import audit_record
from opitios.errors import ApplicationError
from risk.models import State
from risk.states import trading_state_set

from .errors import exception_item, placement_item
from .formatting import (
    cancel_all_json,
    cancel_item_json,
    close_all_json,
    close_item_json,
    flatten_item_json,
    flatten_json,
)
from .intents import OPTION, STOCK, OrderIntent
from .models import Source
from .results import Placement
from .services import BULK_WORKERS, order_cancel, order_place, utcnow

logger = logging.getLogger("opitios.trading.orders")

OPEN_ORDERS_LIMIT = 500  # Alpaca lists at most 500 orders per call
CANCEL_SETTLE_SECONDS = 3.0  # how long a flatten waits for its cancels to leave the open orders before closing


# --- cancel all ------------------------------------------------------------------------------


def orders_cancel_all(*, account: AlpacaAccount, user_id: str, actor_type: str = "user") -> dict:
    """Cancel every open order of the account, one by one; the answer has each order's result.
    Raises the broker's error when the open orders cannot be listed."""
    orders = broker_seam.broker_for(account).list_orders(status="open", limit=OPEN_ORDERS_LIMIT)
    results = []
    for order in orders:
        row = {"order_id": order.id, "client_order_id": order.client_order_id, "symbol": order.symbol, "side": order.side}
        try:
            order_cancel(account=account, order_id=order.id, user_id=user_id, actor_type=actor_type)
        except BrokerError as exc:
            results.append(cancel_item_json({**row, "status": "failed", **exception_item(exc)}))
        else:
            results.append(cancel_item_json({**row, "status": "pending_cancel", "status_code": 200}))
    failed = sum(1 for r in results if r["status"] == "failed")
    return cancel_all_json({"account": account, "results": results,
                            "summary": {"orders": len(results), "canceled": len(results) - failed, "failed": failed}})


# --- closing positions -----------------------------------------------------------------------------


def close_qty(*, position: Position, qty: Decimal | None = None, percentage: Decimal | None = None) -> Decimal:
    """The quantity a close sends: all of it, ``qty``, or ``percentage`` of it (whole contracts for options)."""
    held = abs(position.qty)
    if qty is not None:
        if qty > held:
            raise ApplicationError("close_qty_exceeds_position", f"qty {qty} exceeds the position of {held} {position.symbol}.",
                                   details={"position_qty": str(held)})
        return qty
    if percentage is None:
        return held
    wanted = held * percentage / 100
    step = Decimal(1) if position.asset_class == OPTION else Decimal("0.000000001")
    wanted = wanted.quantize(step, rounding=ROUND_DOWN)
    if wanted <= 0:
        raise ApplicationError("close_qty_too_small", f"{percentage}% of {held} {position.symbol} is less than one tradable unit.",
                               details={"position_qty": str(held)})
    return wanted


def _close_intent(position: Position, qty: Decimal, client_order_id: str | None) -> OrderIntent:
    return OrderIntent(symbol=position.symbol, side="sell" if position.qty > 0 else "buy", type="market", time_in_force="day",
                       asset_class=OPTION if position.asset_class == OPTION else STOCK, qty=qty, client_order_id=client_order_id)


def position_close(*, account: AlpacaAccount, symbol: str, user_id: str, qty: Decimal | None = None,
                   percentage: Decimal | None = None, received_at: datetime | None = None) -> Placement:
    """Close one position (or ``qty`` / ``percentage`` of it) with a market order through the pipeline.
    404 ``position_not_found`` when the account holds none."""
    received_at = received_at or utcnow()
    position = broker_seam.broker_for(account).get_position(symbol)
    if position is None or position.qty == 0:
        raise ApplicationError("position_not_found", f"Account {account.account_id} holds no {symbol} position.")
    intent = _close_intent(position, close_qty(position=position, qty=qty, percentage=percentage), None)
    return order_place(account=account, intent=intent, source=Source.API, user_id=user_id, received_at=received_at)


def _flatten_client_order_id(key: str, account: AlpacaAccount, position: Position) -> str:
    """The same flatten (same key) closing the same position sends the same id: a retry, or two
    concurrent calls, replay instead of selling twice; a position that changed gets a new id."""
    digest = hashlib.sha256(f"{key}|{account.account_id}|{position.symbol}|{position.qty}".encode()).hexdigest()
    return f"flat-{digest[:40]}"


def positions_close_all(*, account: AlpacaAccount, user_id: str, received_at: datetime | None = None,
                        flatten_key: str | None = None) -> dict:
    """Close every position of the account, each with its own order and result. ``flatten_key``
    makes the client order ids deterministic (a flatten and its retries)."""
    received_at = received_at or utcnow()
    positions = [p for p in broker_seam.broker_for(account).get_positions() if p.qty != 0]
    results = []
    for position in positions:
        cid = _flatten_client_order_id(flatten_key, account, position) if flatten_key else None
        try:
            placement = order_place(account=account, intent=_close_intent(position, abs(position.qty), cid), source=Source.API,
                                    user_id=user_id, received_at=received_at)
        except ApplicationError as exc:
            results.append(close_item_json({"symbol": position.symbol, **exception_item(exc)}))
            continue
        results.append(close_item_json({"symbol": position.symbol, **placement_item(placement)}))
    failed = sum(1 for r in results if r["status_code"] >= 400)
    return close_all_json({"account": account, "results": results,
                           "summary": {"positions": len(results), "closing": len(results) - failed, "failed": failed}})


# --- flatten -------------------------------------------------------------------------------------


def _cancels_settle(account: AlpacaAccount, deadline: float) -> None:
    """Wait (briefly) until the cancelled orders have left the open orders: shares they held are
    not available to the closes before then."""
    broker = broker_seam.broker_for(account)
    while time.monotonic() < deadline:
        if not broker.list_orders(status="open", limit=1):
            return
        time.sleep(0.2)


def _flatten_one(account: AlpacaAccount, *, reason: str, user_id: str, key: str) -> dict:
    row = {"account_id": account.account_id}
    try:
        trading_state_set(account=account, state=State.REDUCING, reason=f"flatten {key}: {reason}", actor_type="admin",
                          actor_id=user_id)
        cancels = orders_cancel_all(account=account, user_id=user_id, actor_type="admin")
        if cancels["summary"]["canceled"]:
            _cancels_settle(account, time.monotonic() + CANCEL_SETTLE_SECONDS)
        closes = positions_close_all(account=account, user_id=user_id, flatten_key=key)
    except (BrokerError, ApplicationError) as exc:
        logger.warning("flatten account=%s failed: %s", account.account_id, exc.code)
        return flatten_item_json({**row, "status": "failed", "error": exception_item(exc)["error"]})
    except Exception as exc:
        logger.exception("flatten account=%s raised unexpectedly", account.account_id)
        return flatten_item_json({**row, "status": "failed", "error": exception_item(exc)["error"]})
    done = not cancels["summary"]["failed"] and not closes["summary"]["failed"]
    return flatten_item_json({**row, "status": "completed" if done else "incomplete", "cancels": cancels, "closes": closes})


def _flatten_one_in_thread(account: AlpacaAccount, **kwargs) -> dict:
    try:
        return _flatten_one(account, **kwargs)
    finally:
        connections.close_all()  # this pool thread's own connections


def accounts_flatten(*, accounts: list[AlpacaAccount], reason: str, user_id: str, flatten_id: str | None = None) -> dict:
    """Set each account to ``reducing``, cancel its open orders, then close its positions; accounts
    run concurrently (a bounded pool; every broker call counts against the account's upstream budget).
    Safe to retry: run again with the answer's ``flatten_id``, an account already flat has nothing
    left to do, and a close already sent is replayed, never sent twice."""
    key = flatten_id or uuid.uuid4().hex
    kwargs = {"reason": reason, "user_id": user_id, "key": key}
    if len(accounts) <= 1 or not transaction.get_autocommit():
        results = [_flatten_one(a, **kwargs) for a in accounts]
    else:
        with ThreadPoolExecutor(max_workers=min(BULK_WORKERS, len(accounts)), thread_name_prefix="flatten") as pool:
            results = list(pool.map(lambda a: _flatten_one_in_thread(a, **kwargs), accounts))
    summary = {"accounts": len(results), **{s: sum(1 for r in results if r["status"] == s) for s in ("completed", "incomplete", "failed")}}
    audit_record(actor_type="admin", actor_id=user_id, action="risk.flatten", obj=("flatten", key[:64]),
                 data={"flatten_id": key, "reason": reason, "summary": summary,
                       "accounts": {r["account_id"]: r["status"] for r in results}})
    logger.warning("flatten id=%s by=%s accounts=%s completed=%s incomplete=%s failed=%s reason=%s", key, user_id, summary["accounts"],
                   summary["completed"], summary["incomplete"], summary["failed"], reason)
    return flatten_json({"flatten_id": key, "results": results, "summary": summary})
