"""Managed positions: absorb opted-in buys' fills, adopt, extend, close, opt in or out."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.broker import BrokerError, BrokerNotFound, Position
from accounts.models import AlpacaAccount
from audit.services import audit_record
from trading.ledger import FINAL_STATUSES

from ..models import AutoSellFill, ManagedPosition, PositionOrigin, PositionStatus
from ..selectors import account_auto_sell_buys
from .check_result import AccountCheck


def fills_absorb(*, account: AlpacaAccount, broker, result: AccountCheck) -> None:
    """Create or extend a ManagedPosition for each opting-in option buy that (further) filled."""
    for record in account_auto_sell_buys(account_pk=account.pk):
        try:
            order = broker.get_order(record.broker_order_id)
        except BrokerNotFound:
            AutoSellFill.objects.update_or_create(
                account=account, client_order_id=record.client_order_id,
                defaults={"symbol": record.symbol, "broker_order_id": record.broker_order_id, "final": True, "broker_status": "not_found"},
            )
            continue
        except BrokerError as exc:
            result.add(f"fill_check_failed:{exc.code}")
            continue
        with transaction.atomic():
            fill, _ = AutoSellFill.objects.select_for_update().get_or_create(
                account=account, client_order_id=record.client_order_id,
                defaults={"symbol": order.symbol, "broker_order_id": order.id},
            )
            delta = (order.filled_qty or Decimal(0)) - fill.filled_qty
            if delta > 0 and order.filled_avg_price:
                fill.position = position_extend(account=account, symbol=order.symbol, qty=delta, price=order.filled_avg_price,
                                                opened_at=order.filled_at or timezone.now(), client_order_id=record.client_order_id)
                result.add("fills_absorbed")
            fill.filled_qty, fill.filled_avg_price = order.filled_qty or Decimal(0), order.filled_avg_price
            fill.broker_status, fill.final = order.status, order.status in FINAL_STATUSES
            fill.save()


def position_extend(*, account: AlpacaAccount, symbol: str, qty: Decimal, price: Decimal, opened_at: datetime,
                    client_order_id: str = "", origin: str = PositionOrigin.AUTO_SELL_ORDER) -> ManagedPosition:
    """Open a managed position, or add to the live one at the weighted average entry price."""
    mp = ManagedPosition.objects.select_for_update().filter(account=account, symbol=symbol).exclude(status=PositionStatus.CLOSED).first()
    if mp is None:
        return ManagedPosition.objects.create(
            account=account, symbol=symbol, qty=qty, entry_price=price, opened_at=opened_at, high_water_mark=price,
            origin=origin, source_orders=[client_order_id] if client_order_id else [],
        )
    total = mp.qty + qty
    mp.entry_price = ((mp.entry_price * mp.qty + price * qty) / total).quantize(Decimal("0.000001"))
    mp.qty = total
    if client_order_id and client_order_id not in mp.source_orders:
        mp.source_orders = [*mp.source_orders, client_order_id]
    mp.save(update_fields=["entry_price", "qty", "source_orders", "updated_at"])
    return mp


def _adopt_positions(account: AlpacaAccount, positions: dict[str, Position], now: datetime, result: AccountCheck) -> None:
    """``manage_all_option_positions``: long option positions with no row yet are managed from now on.
    A row the admin opted out keeps them untouched."""
    known = set(ManagedPosition.objects.filter(account=account).exclude(status=PositionStatus.CLOSED).values_list("symbol", flat=True))
    for bp in positions.values():
        if bp.asset_class != "us_option" or bp.symbol in known or bp.side == "short" or bp.qty <= 0:
            continue
        with transaction.atomic():
            position_extend(account=account, symbol=bp.symbol, qty=bp.qty, price=bp.avg_entry_price, opened_at=now, origin=PositionOrigin.MANAGE_ALL)
        result.add("adopted")


def position_close(mp: ManagedPosition, *, reason: str, now: datetime) -> None:
    """The position is no longer held (sold by its exit, or gone at the broker); a reason already set is kept."""
    mp.status, mp.closed_at = PositionStatus.CLOSED, now
    if not mp.exit_reason:
        mp.exit_reason = reason
    mp.save(update_fields=["status", "closed_at", "exit_reason", "updated_at"])


def position_set_opt_in(*, position: ManagedPosition, opted_in: bool, actor_id: str) -> ManagedPosition:
    with transaction.atomic():
        before = position.opted_in
        position.opted_in = opted_in
        position.save(update_fields=["opted_in", "updated_at"])
        audit_record(actor_type="admin", actor_id=actor_id, action="config.changed", account=position.account, obj=position,
                     data={"field": "opted_in", "old": before, "new": opted_in, "symbol": position.symbol})
    return position
