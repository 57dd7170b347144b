"""Reads for one account's desk page: its balance, recorded fills (for realized P&L), recent orders with
their broker events, and the sell bot's managed positions. Database only; the broker calls of the page
(holdings, equity curve) are in ``desk/broker_reads.py``."""
from __future__ import annotations

from decimal import Decimal

from django.db.models import F, Prefetch

from accounts.models import AlpacaAccount, BalanceSnapshot
from desk.pnl import OPTION_MULTIPLIER, Fill, realize_fifo, realized_by_period, realized_by_symbol
from sellbot.models import ManagedPosition
from trading.models import OrderEvent, OrderRecord

FILL_EVENTS = ("fill", "partial_fill")
OPTION_CLASS = "us_option"
RECENT_ORDERS = 25
PERIOD_ROWS = {"day": 14, "week": 8, "month": 6}


def balance(account: AlpacaAccount) -> BalanceSnapshot | None:
    return BalanceSnapshot.objects.filter(account=account).order_by("-fetched_at").first()


def account_fills(account: AlpacaAccount) -> list[Fill]:
    """Every execution the ledger holds for the account: its ``fill`` and ``partial_fill`` events (each with
    its own qty and price); an order with a fill but no fill event (recorded before the trade-updates
    listener ran) counts once, at its filled qty and average price."""
    fills: list[Fill] = []
    with_events: set[int] = set()
    events = (OrderEvent.objects.filter(account=account, event__in=FILL_EVENTS, qty__gt=0, price__isnull=False)
              .select_related("record").only("symbol", "side", "qty", "price", "broker_at", "record_id", "record__asset_class"))
    for e in events.iterator(chunk_size=2000):
        option = e.record is not None and e.record.asset_class == OPTION_CLASS
        fills.append(Fill(e.symbol, e.side, e.qty, e.price, e.broker_at, OPTION_MULTIPLIER if option else 1))
        if e.record_id:
            with_events.add(e.record_id)
    records = (OrderRecord.objects.filter(account=account, filled_qty__gt=0, filled_avg_price__isnull=False)
               .exclude(pk__in=with_events)
               .values_list("symbol", "side", "filled_qty", "filled_avg_price", "filled_at", "responded_at", "received_at", "asset_class"))
    for symbol, side, qty, price, filled_at, responded_at, received_at, asset_class in records.iterator(chunk_size=2000):
        fills.append(Fill(symbol, side, qty, price, filled_at or responded_at or received_at,
                          OPTION_MULTIPLIER if asset_class == OPTION_CLASS else 1))
    return fills


def realized_pnl(account: AlpacaAccount) -> dict:
    result = realize_fifo(account_fills(account))
    by_symbol = realized_by_symbol(result.realizations)
    return {
        "by_symbol": by_symbol,
        "total": sum(by_symbol.values(), Decimal(0)),
        "periods": {period: realized_by_period(result.realizations, period)[:rows] for period, rows in PERIOD_ROWS.items()},
        "open_lots": result.open_lots,
    }


def recent_orders(account: AlpacaAccount, *, limit: int = RECENT_ORDERS) -> list[OrderRecord]:
    """The newest order records, each with its broker events (``record.broker_events``) oldest first."""
    events = Prefetch("events", queryset=OrderEvent.objects.order_by("broker_at", "pk"), to_attr="broker_events")
    return list(OrderRecord.objects.filter(account=account).order_by("-received_at").prefetch_related(events)[:limit])


def managed_positions(account: AlpacaAccount, *, limit: int = 50) -> list[ManagedPosition]:
    """Open positions first, then the most recently closed."""
    return list(ManagedPosition.objects.filter(account=account).order_by(F("closed_at").desc(nulls_first=True), "-opened_at")[:limit])
