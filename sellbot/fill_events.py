"""The sell bot's side of a fill event (docs/architecture.md, "Order lifecycle"): an opted-in option buy
that (further) filled opens or extends its ``ManagedPosition`` at once, rather than at the next sweep; an
exit order that filled the whole position closes it (``exit_fill_close``).

The bookkeeping is the sweep's own (``AutoSellFill``, locked, holding the quantity already absorbed), so a
fill absorbed here is not absorbed again by the sweep, and the other way round."""
from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.broker import BrokerOrder
from accounts.models import AlpacaAccount
from trading.models import OrderRecord

from .models import AutoSellFill, ManagedPosition, PositionStatus
from .services import FINAL_STATUSES, position_close, position_extend


def is_auto_sell_buy(record: OrderRecord) -> bool:
    return record.auto_sell_enabled and record.side == "buy" and record.asset_class == "us_option" and record.is_current


def buy_fill_absorb(*, account: AlpacaAccount, record: OrderRecord, order: BrokerOrder) -> ManagedPosition | None:
    """Extend the position by what ``order`` filled beyond what was absorbed before; the position, or
    None when the order is not an opted-in option buy or nothing new filled."""
    if not is_auto_sell_buy(record):
        return None
    with transaction.atomic():
        fill, _ = AutoSellFill.objects.select_for_update().get_or_create(
            account=account, client_order_id=record.client_order_id, defaults={"symbol": order.symbol, "broker_order_id": order.id},
        )
        delta = (order.filled_qty or Decimal(0)) - fill.filled_qty
        position = None
        if delta > 0 and order.filled_avg_price:
            position = fill.position = position_extend(
                account=account, symbol=order.symbol, qty=delta, price=order.filled_avg_price,
                opened_at=order.filled_at or timezone.now(), client_order_id=record.client_order_id,
            )
        if delta >= 0:
            fill.filled_qty, fill.filled_avg_price = order.filled_qty or Decimal(0), order.filled_avg_price
            fill.broker_status, fill.final = order.status, order.status in FINAL_STATUSES
            fill.save()
    return position


def exit_fill_close(*, account: AlpacaAccount, record: OrderRecord, order: BrokerOrder) -> ManagedPosition | None:
    """Close the managed position whose exit order this is, once the order has filled the position's
    whole quantity; the position, or None. A partial fill (or a position extended since the exit was
    placed) leaves it to the sweep, which closes it when the broker no longer holds it."""
    if order.side != "sell" or order.status != "filled" or not order.client_order_id:
        return None
    with transaction.atomic():
        position = (ManagedPosition.objects.select_for_update()
                    .filter(account=account, exit_client_order_id=order.client_order_id, status=PositionStatus.CLOSING).first())
        if position is None or (order.filled_qty or Decimal(0)) < position.qty:
            return None
        position_close(position, reason=position.exit_reason or "sold", now=order.filled_at or timezone.now())
    return position
