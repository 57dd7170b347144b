"""The order ledger: trade-updates events into ``OrderEvent`` rows and their ``OrderRecord``
(docs/architecture.md, "Order lifecycle").

Idempotence: a fill counts once, by its execution id and by the order's cumulative filled quantity (an
event whose cumulative fill the record already has is a duplicate, e.g. a fill reconciliation already
recovered); other events count once per order and event (``pending_cancel``, ``pending_replace`` and ``done_for_day``, which
may repeat, once per broker timestamp). Each event, its record's update and its audit event commit in one
transaction; a fill then enqueues the account's balance refresh.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.balance_refresh import balance_refresh_request
from accounts.broker import BrokerOrder
from accounts.broker.contract import TradeUpdate
from accounts.models import AlpacaAccount
from audit.services import audit_record

from .models import FINAL_STATUSES, OPEN_ORDER, OrderEvent, OrderRecord, Outcome, Source

logger = logging.getLogger("opitios.trading.ledger")

FILL_EVENTS = ("fill", "partial_fill")
REPEATABLE_EVENTS = ("pending_cancel", "pending_replace", "done_for_day")  # done_for_day: once per session
AUDIT_ACTIONS = {
    "fill": "order.filled",
    "partial_fill": "order.partially_filled",
    "canceled": "order.canceled",
    "expired": "order.expired",
    "replaced": "order.replaced",
}
_US = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Recorded:
    """What one update did: ``event`` is None for a duplicate; ``filled`` is the quantity it added."""

    record: OrderRecord
    event: OrderEvent | None
    filled: Decimal = Decimal(0)

    @property
    def duplicate(self) -> bool:
        return self.event is None


def _key(order: BrokerOrder, event: str, at: datetime, execution_id: str) -> str:
    if execution_id:
        return f"exec:{execution_id}"
    if event in FILL_EVENTS:
        return f"{order.id}:{event}:{order.filled_qty.normalize()}"
    if event in REPEATABLE_EVENTS:
        return f"{order.id}:{event}:{at.strftime(_US)}"
    return f"{order.id}:{event}"


def _record_for(account: AlpacaAccount, order: BrokerOrder, at: datetime) -> OrderRecord:
    """The order's record, locked; an order the gateway never placed gets one of source ``external``."""
    records = OrderRecord.objects.select_for_update().filter(account=account)
    record = records.filter(broker_order_id=order.id).order_by("-is_current").first()
    if record is None and order.client_order_id:
        record = records.filter(client_order_id=order.client_order_id, is_current=True).first()
    if record is not None:
        return record
    return OrderRecord.objects.create(
        account=account, account_type=account.account_type or "", source=Source.EXTERNAL, client_order_id=order.client_order_id,
        broker_order_id=order.id, symbol=order.symbol, asset_class=order.asset_class, side=order.side, order_type=order.type,
        time_in_force=order.time_in_force, qty=order.qty, notional=order.notional, limit_price=order.limit_price,
        stop_price=order.stop_price, extended_hours=order.extended_hours, outcome=Outcome.ACCEPTED, broker_status=order.status,
        received_at=order.created_at or order.submitted_at or at, submitted_at=order.submitted_at or order.created_at,
        order_class=order.order_class or "simple", trail_price=order.trail_price, trail_percent=order.trail_percent,
        # a replacement made outside the gateway is linked to the order it replaced, as the gateway's own are
        action="replace" if order.replaces else "place", replaces_order_id=order.replaces or "",
        replaces=OrderRecord.objects.filter(account=account, broker_order_id=order.replaces).order_by("-received_at").first()
        if order.replaces else None,
    )


def _ms(start: datetime | None, end: datetime) -> float | None:
    return round((end - start).total_seconds() * 1000, 3) if start else None


def _apply(record: OrderRecord, order: BrokerOrder, event: str, at: datetime) -> list[str]:
    """The record's broker-side fields after the event; the names of the fields it changed."""
    changed = ["broker_status"]
    record.broker_status = order.status
    if not record.broker_order_id:
        record.broker_order_id, changed = order.id, [*changed, "broker_order_id"]
    if event in FILL_EVENTS:
        record.filled_qty, record.filled_avg_price = order.filled_qty, order.filled_avg_price
        started = record.submitted_at or order.submitted_at
        if record.first_fill_ms is None:
            record.first_fill_ms = _ms(started, at)
        record.last_fill_ms = _ms(started, at)
        if order.status == "filled":
            record.filled_at = order.filled_at or at
        changed += ["filled_qty", "filled_avg_price", "filled_at", "first_fill_ms", "last_fill_ms"]
    return changed


def _write(account: AlpacaAccount, order: BrokerOrder, *, event: str, at: datetime, received_at: datetime, qty, price,
           position_qty, execution_id: str, reconciled: bool) -> Recorded:
    with transaction.atomic():
        record = _record_for(account, order, at)
        key = _key(order, event, at, execution_id)
        if event in FILL_EVENTS and order.filled_qty <= record.filled_qty or OrderEvent.objects.filter(dedupe_key=key).exists():
            return Recorded(record, None)
        added = order.filled_qty - record.filled_qty if event in FILL_EVENTS else Decimal(0)
        row = OrderEvent.objects.create(
            account=account, record=record, broker_order_id=order.id, client_order_id=order.client_order_id, event=event,
            symbol=order.symbol, side=order.side, order_status=order.status, qty=qty, price=price, position_qty=position_qty,
            order_filled_qty=order.filled_qty, execution_id=execution_id, broker_at=at, received_at=received_at,
            reconciled=reconciled, dedupe_key=key,
        )
        record.save(update_fields=_apply(record, order, event, at))
        action = AUDIT_ACTIONS.get(event)
        if action:
            audit_record(actor_type="system", actor_id="trade_updates", action=action, account=account, obj=record, data={
                "broker_order_id": order.id, "client_order_id": order.client_order_id, "symbol": order.symbol, "side": order.side,
                "qty": qty, "price": price, "filled_qty": order.filled_qty, "filled_avg_price": order.filled_avg_price,
                "status": order.status, "execution_id": execution_id, "broker_at": at.strftime(_US), "reconciled": reconciled,
            })
        if added > 0:
            # The same coalesced, off-path refresh as an accepted order's (accounts/balance_refresh.py).
            transaction.on_commit(lambda pk=account.pk: balance_refresh_request(account_pk=pk))
    return Recorded(record, row, added)


def trade_update_record(*, account: AlpacaAccount, update: TradeUpdate) -> Recorded:
    """One streamed event into the ledger (a duplicate records nothing)."""
    return _write(account, update.order, event=update.event, at=update.timestamp, received_at=update.received_at, qty=update.qty,
                  price=update.price, position_qty=update.position_qty, execution_id=update.execution_id, reconciled=False)


def _updated_at(order: BrokerOrder, fallback: datetime) -> datetime:
    raw = order.raw.get("updated_at")
    if raw:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return fallback


def order_reconcile(*, account: AlpacaAccount, order: BrokerOrder) -> list[Recorded]:
    """Events the stream did not deliver (a gap), recovered from the order's REST state: its creation,
    the fill it has beyond what the ledger holds (one event for the difference, at the average price
    that makes the totals agree) and its final status. Marked ``reconciled``; nothing twice."""
    now = timezone.now()
    done: list[Recorded] = []
    seen = set(OrderEvent.objects.filter(broker_order_id=order.id).values_list("event", flat=True))
    if not seen:
        done.append(_write(account, order, event="new", at=order.submitted_at or order.created_at or now, received_at=now, qty=None,
                           price=None, position_qty=None, execution_id="", reconciled=True))
    record = OrderRecord.objects.filter(account=account, broker_order_id=order.id).first()
    had_qty = record.filled_qty if record else Decimal(0)
    had_avg = (record.filled_avg_price if record else None) or Decimal(0)
    if order.filled_qty > had_qty and order.filled_avg_price is not None:
        qty = order.filled_qty - had_qty
        price = ((order.filled_avg_price * order.filled_qty - had_avg * had_qty) / qty).quantize(Decimal("0.000001"))
        event = "fill" if order.status == "filled" else "partial_fill"
        at = order.filled_at if event == "fill" and order.filled_at else _updated_at(order, now)
        done.append(_write(account, order, event=event, at=at, received_at=now, qty=qty, price=price, position_qty=None,
                           execution_id="", reconciled=True))
    if order.status in FINAL_STATUSES and order.status != "filled" and order.status not in seen:
        at = order.canceled_at if order.status == "canceled" and order.canceled_at else _updated_at(order, now)
        done.append(_write(account, order, event=order.status, at=at, received_at=now, qty=None, price=None, position_qty=None,
                           execution_id="", reconciled=True))
    return done


def open_order_ids(*, account: AlpacaAccount) -> list[str]:
    """Broker ids of the account's orders the ledger still has as open (checked one by one on reconcile)."""
    return list(OrderRecord.objects.filter(OPEN_ORDER, account=account).exclude(broker_order_id="")
                .values_list("broker_order_id", flat=True)[:500])


def last_event_at(*, account: AlpacaAccount) -> datetime | None:
    return OrderEvent.objects.filter(account=account).order_by("-broker_at").values_list("broker_at", flat=True).first()

