"""The account page's two broker calls, through the seam, for that one account only: its holdings (with
Alpaca's unrealized P&L) and its equity curve (portfolio history). A broker failure is shown on the page,
never raised: the rest of the page reads the database."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal

from accounts.broker import BrokerError, EquityPoint, Position, broker_for
from accounts.models import AlpacaAccount
from desk.pnl import OPTION_MULTIPLIER

OPTION_CLASS = "us_option"
EQUITY_PERIOD = "1M"


@dataclass
class BrokerRead:
    items: list = field(default_factory=list)
    error: str = ""
    ms: float | None = None


def _read(call) -> BrokerRead:
    started = time.perf_counter()
    try:
        items = call()
    except BrokerError as exc:
        return BrokerRead(error=f"{exc.code}: {exc}", ms=round((time.perf_counter() - started) * 1000, 1))
    return BrokerRead(items=items, ms=round((time.perf_counter() - started) * 1000, 1))


def holding_row(position: Position) -> dict:
    """A position with its multiplier (×100 for an option contract) and unrealized P&L: Alpaca's, else
    ``(price − entry) × qty × multiplier``."""
    multiplier = OPTION_MULTIPLIER if position.asset_class == OPTION_CLASS else 1
    unrealized = position.unrealized_pl
    if unrealized is None and position.current_price is not None:
        unrealized = (position.current_price - position.avg_entry_price) * position.qty * multiplier
    market_value = position.market_value
    if market_value is None and position.current_price is not None:
        market_value = position.current_price * position.qty * multiplier
    return {"position": position, "multiplier": multiplier, "unrealized": unrealized, "market_value": market_value,
            "option": multiplier != 1}


def holdings(account: AlpacaAccount) -> BrokerRead:
    read = _read(lambda: broker_for(account).get_positions())
    read.items = [holding_row(p) for p in sorted(read.items, key=lambda p: p.symbol)]
    return read


def equity_curve(account: AlpacaAccount, *, period: str = EQUITY_PERIOD) -> BrokerRead:
    read = _read(lambda: broker_for(account).get_portfolio_history(period=period))
    read.items = [p for p in read.items if isinstance(p, EquityPoint) and p.equity is not None]
    return read


def total_unrealized(rows: list[dict]) -> Decimal | None:
    values = [r["unrealized"] for r in rows if r["unrealized"] is not None]
    return sum(values, Decimal(0)) if values else None
