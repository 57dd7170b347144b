"""The sell strategy as pure functions (docs/architecture.md, "Sell bot").

``evaluate(position, quote, clock, config, now)`` returns a ``Decision``. No database, no broker, no
clock reads: everything it needs is passed in, so each rule is tested at its boundaries.

Prices: the exit price is the option's latest bid, the mark is the mid; either falls back to the
position's ``current_price`` when the quote lacks it. Ratios compare the exit price with the entry.
``trailing_stop_rate`` is a ratio like ``stop_loss_rate``: 0.9 sells once the bid is at or below
90% of the high-water mark (the highest mark seen since entry, starting at the entry price).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from accounts.broker import Clock, Quote
from opitios.config import SellModuleConfig
from trading.intents import occ_parse

MARKET_TZ = ZoneInfo("America/New_York")
MIN_TICK = Decimal("0.01")

HOLD = "hold"
MARKET_CLOSED = "market_closed"
MARKET_CLOSE = "market_close"
STOP_LOSS = "stop_loss"
TAKE_PROFIT = "take_profit"
TRAILING_STOP = "trailing_stop"
MAX_HOLD = "max_hold"
ZERO_DTE = "zero_dte_flatten"
NO_PRICE = "no_price"
EXIT_REASONS = (MARKET_CLOSE, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, MAX_HOLD, ZERO_DTE)


@dataclass(frozen=True)
class PositionView:
    """What the strategy knows of a managed long position."""

    symbol: str
    entry_price: Decimal
    opened_at: datetime  # aware
    high_water_mark: Decimal | None = None
    current_price: Decimal | None = None  # the broker position's, the fallback price


@dataclass(frozen=True)
class Decision:
    reason: str
    exit_price: Decimal | None = None
    mark_price: Decimal | None = None
    high_water_mark: Decimal | None = None
    pl_pct: Decimal | None = None
    detail: str = ""

    @property
    def sell(self) -> bool:
        return self.reason in EXIT_REASONS


def _positive(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > 0 else None


def exit_price(quote: Quote | None, current_price: Decimal | None) -> Decimal | None:
    """The bid, else the position's current price."""
    return _positive(quote.bid if quote else None) or _positive(current_price)


def mark_price(quote: Quote | None, current_price: Decimal | None) -> Decimal | None:
    """The mid of a two-sided quote, else the position's current price, else the bid."""
    bid = _positive(quote.bid if quote else None)
    ask = _positive(quote.ask if quote else None)
    if bid and ask:
        return (bid + ask) / 2
    return _positive(current_price) or bid


def market_date(now: datetime) -> date:
    """Today's date on the exchange (New York), whatever the server's timezone."""
    return now.astimezone(MARKET_TZ).date()


def is_zero_dte(symbol: str, now: datetime) -> bool:
    """An option that expires today on the exchange. Symbols come compact from the broker; a padded
    OCC symbol (``SPY   260320P...``) is read too."""
    parts = occ_parse(symbol.replace(" ", ""))
    return parts is not None and parts["expiration"] == market_date(now)


def evaluate(position: PositionView, quote: Quote | None, clock: Clock | None, config: SellModuleConfig, now: datetime) -> Decision:
    """Apply the rules in order; the first that fires decides."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    price = exit_price(quote, position.current_price)
    mark = mark_price(quote, position.current_price)
    hwm = max(filter(None, (position.high_water_mark, position.entry_price, mark)))
    entry = position.entry_price
    ratio = price / entry if price is not None and entry > 0 else None
    pl_pct = ((ratio - 1) * 100).quantize(Decimal("0.01")) if ratio is not None else None

    def decide(reason: str, detail: str = "") -> Decision:
        return Decision(reason, exit_price=price, mark_price=mark, high_water_mark=hwm, pl_pct=pl_pct, detail=detail)

    if clock is not None and not clock.is_open:
        return decide(MARKET_CLOSED, f"market closed; opens {clock.next_open.isoformat()}")
    if clock is not None:
        remaining = clock.next_close - now
        window = timedelta(minutes=config.close_before_market_close_minutes)
        if remaining <= window:
            return decide(MARKET_CLOSE, f"{remaining.total_seconds():.0f}s to the close (window {window.total_seconds():.0f}s)")
    # ``flatten`` sells a contract expiring today at once, priced or not; ``strategy`` applies the rules.
    flatten = config.zero_day_handling == "flatten" and is_zero_dte(position.symbol, now)
    if ratio is None:
        return decide(ZERO_DTE, "expires today; zero_day_handling=flatten") if flatten else decide(NO_PRICE, "no bid and no current price")
    rules = config.strategy_one
    if ratio <= rules.stop_loss_rate:
        return decide(STOP_LOSS, f"price/entry {ratio:.4f} <= {rules.stop_loss_rate}")
    if ratio >= rules.profit_rate:
        return decide(TAKE_PROFIT, f"price/entry {ratio:.4f} >= {rules.profit_rate}")
    if rules.trailing_stop_rate is not None and price <= hwm * rules.trailing_stop_rate:
        return decide(TRAILING_STOP, f"price {price} <= high-water mark {hwm} x {rules.trailing_stop_rate}")
    limit = config.position_time_limit
    if limit.enabled:
        held = now - position.opened_at
        if held >= timedelta(minutes=limit.max_hold_minutes):
            return decide(MAX_HOLD, f"held {held.total_seconds() / 60:.1f} min >= {limit.max_hold_minutes} min")
    if flatten:
        return decide(ZERO_DTE, "expires today; zero_day_handling=flatten")
    return decide(HOLD)


# --- exit orders and stale-order cancellation (moved from sellbot/services, unchanged) ---


BOT_ORDER_PREFIX = "sb-"


def exit_client_order_id(position_pk: int, attempt: int) -> str:
    return f"{BOT_ORDER_PREFIX}{position_pk}-{attempt}"


def exit_order_shape(*, quote: Quote | None, config: SellModuleConfig, emergency: bool) -> tuple[str, Decimal | None]:
    """(type, limit_price): a limit at the bid, or market if configured or after max_exit_attempts; with
    no bid, a limit at the minimum tick (a market sell of an option without a bid is rejected)."""
    bid = quote.bid if quote and quote.bid and quote.bid > 0 else None
    if bid is None:
        return "limit", MIN_TICK
    if emergency or config.sell_order_type == "market":
        return "market", None
    return "limit", bid


def order_in_scope(order, scope: str) -> bool:
    if scope == "all_orders":
        return True
    if scope == "bot_orders":
        return order.client_order_id.startswith(BOT_ORDER_PREFIX)
    return order.side == "sell"


def order_age_seconds(order, now: datetime) -> float | None:
    """Age from the broker's submitted_at (aware UTC), never from a local clock's zone."""
    at = order.submitted_at or order.created_at
    if at is None:
        return None
    if at.tzinfo is None:
        raise ValueError(f"order {order.id} submitted_at is naive")
    return (now - at).total_seconds()


def retry_delay(*, retries: int, base: float, cap: float = 60.0) -> float:
    """Exponential backoff with jitter kept in the upper half of each step, base x 2^n x U(0.5, 1],
    both ends capped: successive delays never shrink (also at the cap) while retries from many tasks
    still spread out."""
    low, high = min(cap, base * 2 ** (retries - 1)), min(cap, base * 2**retries)
    return round(random.uniform(low, high), 3)
