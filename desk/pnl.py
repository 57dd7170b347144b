"""Realized P&L by FIFO: pure rules, no database, no network (docs/console.md, "Realized P&L").

Fills of one symbol are matched first in, first out: a sell closes the oldest long lots, a buy closes the
oldest short lots, and what a fill does not close opens a lot of its own side. Each close realizes
``(close − open) × qty × multiplier`` for longs (the reverse for shorts); an option contract's multiplier
is 100. A realization counts on the day of the fill that closed it, so the daily, weekly (ISO, from Monday)
and monthly sums add up to the per-symbol totals.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque
from dataclasses import dataclass
from decimal import Decimal

OPTION_MULTIPLIER = 100
PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class Fill:
    symbol: str
    side: str  # buy | sell
    qty: Decimal  # positive
    price: Decimal
    at: dt.datetime  # aware
    multiplier: int = 1


@dataclass(frozen=True)
class Realization:
    symbol: str
    qty: Decimal  # closed, positive
    open_price: Decimal
    close_price: Decimal
    pnl: Decimal
    at: dt.datetime  # the closing fill's time
    long: bool


@dataclass(frozen=True)
class Lot:
    symbol: str
    qty: Decimal  # signed: negative for a short lot
    price: Decimal
    at: dt.datetime
    multiplier: int


@dataclass(frozen=True)
class FifoResult:
    realizations: list[Realization]
    open_lots: list[Lot]


def realize_fifo(fills: list[Fill]) -> FifoResult:
    """Match ``fills`` (any order; sorted by time, stable) per symbol, first in, first out."""
    lots: dict[str, deque[Lot]] = defaultdict(deque)
    realized: list[Realization] = []
    for fill in sorted(fills, key=lambda f: f.at):
        if fill.qty <= 0:
            continue
        sign = 1 if fill.side == "buy" else -1
        remaining = fill.qty
        book = lots[fill.symbol]
        while remaining > 0 and book and (book[0].qty > 0) != (sign > 0):
            lot = book[0]
            closed = min(remaining, abs(lot.qty))
            long = lot.qty > 0
            per_unit = (fill.price - lot.price) if long else (lot.price - fill.price)
            realized.append(Realization(symbol=fill.symbol, qty=closed, open_price=lot.price, close_price=fill.price,
                                        pnl=per_unit * closed * lot.multiplier, at=fill.at, long=long))
            left = abs(lot.qty) - closed
            if left:
                book[0] = Lot(lot.symbol, left if long else -left, lot.price, lot.at, lot.multiplier)
            else:
                book.popleft()
            remaining -= closed
        if remaining > 0:
            book.append(Lot(fill.symbol, sign * remaining, fill.price, fill.at, fill.multiplier))
    open_lots = [lot for symbol in sorted(lots) for lot in lots[symbol]]
    return FifoResult(realizations=realized, open_lots=open_lots)


def realized_by_symbol(realizations: list[Realization]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for r in realizations:
        totals[r.symbol] += r.pnl
    return dict(sorted(totals.items()))


def period_start(moment: dt.datetime, period: str) -> dt.date:
    """The UTC day, the Monday of its ISO week, or the first of its month."""
    day = moment.astimezone(dt.UTC).date()
    if period == "day":
        return day
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown period {period!r}")


def realized_by_period(realizations: list[Realization], period: str) -> list[tuple[dt.date, Decimal]]:
    """``[(period start, P&L), ...]``, newest first."""
    totals: dict[dt.date, Decimal] = defaultdict(Decimal)
    for r in realizations:
        totals[period_start(r.at, period)] += r.pnl
    return sorted(totals.items(), reverse=True)
