"""The allowed range of every numeric setting: one table, read by the secrets.yml loader
and, as validators, by the model fields the admin forms edit.

A range is sane for the setting's meaning and fits its column: ``MONEY`` is what
``DecimalField(max_digits=14, decimal_places=2)`` holds, so a value the loader accepts can always
be written and read back.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


@dataclass(frozen=True)
class Range:
    low: Decimal
    high: Decimal
    low_open: bool = False  # the low bound itself is outside
    high_open: bool = False
    places: int | None = None  # at most this many decimals
    integer: bool = False

    def describe(self) -> str:
        low = f"greater than {self.low}" if self.low_open else f"at least {self.low}"
        high = f"less than {self.high}" if self.high_open else f"at most {self.high}"
        kind = "a whole number" if self.integer else "a number"
        places = f" with at most {self.places} decimals" if self.places is not None and not self.integer else ""
        return f"{kind} {low} and {high}{places}"

    def contains(self, value: Decimal) -> bool:
        if not value.is_finite():
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        if not (above and below):
            return False  # before quantize: a huge value would overflow its precision
        return self.places is None or value == value.quantize(Decimal(1).scaleb(-self.places))

    def parse(self, raw: Any) -> Decimal:
        """The value as a Decimal, or ValueError naming the allowed range."""
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str, Decimal)):
            raise ValueError(f"must be {self.describe()}; got {raw!r}")
        try:
            value = Decimal(str(raw).strip())
        except InvalidOperation:
            raise ValueError(f"must be {self.describe()}; got {raw!r}") from None
        if (self.integer and value.is_finite() and value != value.to_integral_value()) or not self.contains(value):
            raise ValueError(f"must be {self.describe()}; got {raw!r}")
        return value

    def validators(self) -> list:
        """Django validators for a model field (closed bounds; the loader checks open ones)."""
        from django.core.validators import MaxValueValidator, MinValueValidator

        cast = int if self.integer else Decimal
        return [MinValueValidator(cast(self.low)), MaxValueValidator(cast(self.high))]


def _r(low, high, **kwargs) -> Range:
    return Range(Decimal(str(low)), Decimal(str(high)), **kwargs)


MONEY = _r(0, "999999999999.99", places=2)  # DecimalField(max_digits=14, decimal_places=2)
POSITIVE_MONEY = _r(0, "999999999999.99", low_open=True, places=2)

RANGES: dict[str, Range] = {
    # trading
    "trading.minimum_balance": MONEY,
    "trading.balance_refresh_seconds": _r(1, 3600, integer=True),
    "trading.balance_refresh_coalesce_s": _r(0, 300),
    "trading.balance_max_age_seconds": _r(0, 86400, integer=True),
    "trading.balance_check_timeout_ms": _r(1, 60000, integer=True),
    "trading.balance_fallback_max_age_seconds": _r(0, 86400, integer=True),
    "trading.max_symbols_per_request": _r(1, 1000, integer=True),
    "trading.max_order_qty": _r(0, 1_000_000_000, low_open=True, places=9),  # OrderRecord.qty: 20 digits, 9 decimals
    "trading.max_order_notional": POSITIVE_MONEY,
    # risk controls (also the ranges of their per-account overrides)
    "trading.price_collar_pct": _r(0, 1000, low_open=True, places=4),
    "trading.max_open_orders": _r(1, 500, integer=True),  # Alpaca lists at most 500 orders per call
    "trading.max_orders_per_second": _r(1, 10000, integer=True),
    # sell_module
    "sell_module.check_interval": _r("0.5", 3600),
    "sell_module.order_cancel_minutes": _r(0, 1440, low_open=True),
    "sell_module.max_exit_attempts": _r(1, 100, integer=True),
    "sell_module.close_before_market_close_minutes": _r(0, 390, integer=True),  # a regular session is 390 minutes
    "sell_module.strategy_one.profit_rate": _r(1, 100, low_open=True),
    "sell_module.strategy_one.stop_loss_rate": _r(0, 1, low_open=True, high_open=True),
    "sell_module.strategy_one.trailing_stop_rate": _r(0, 1, low_open=True, high_open=True),
    "sell_module.position_time_limit.max_hold_minutes": _r(1, 525600, integer=True),  # a year
    "sell_module.tick_eval_interval_ms": _r(0, 60000, integer=True),  # 0: no tick-driven exits
    # market_data (the streaming hub); 405 is Alpaca's symbol limit per stream connection
    "market_data.max_quote_age_ms": _r(0, 60000, integer=True),
    "market_data.unsubscribe_grace_seconds": _r(0, 3600),
    "market_data.max_symbols_per_connection": _r(1, 405, integer=True),
    "market_data.max_connections_per_user": _r(1, 1000, integer=True),
    "market_data.max_connections_per_ip": _r(1, 10000, integer=True),
    "market_data.max_backlog": _r(10, 100000, integer=True),
    "market_data.heartbeat_seconds": _r(1, 300),
    "market_data.stall_seconds": _r(1, 300),
    # rate_limits: the count of "N/period"
    "rate_limits.count": _r(1, 1_000_000_000, integer=True),  # benchmarks switch throttling off with 10000000/min
    # jwt
    "jwt.leeway_seconds": _r(0, 300, integer=True),
    "alerts.repeat_minutes": _r(5, 10080, integer=True),
    "alerts.stream_down_seconds": _r(10, 86400, integer=True),
    # accounts (the same ranges validate the admin's account form)
    "accounts.minimum_balance": MONEY,
    "accounts.rate_limit_per_minute": _r(1, 1_000_000, integer=True),
    "accounts.max_connections": _r(1, 1000, integer=True),
}

# Text lengths of an account entry: credentials bounded (Alpaca's are 20-40 characters), names fit their columns.
TEXT_MAX_LENGTH = {"api_key": 256, "secret_key": 256, "name": 200, "tier": 64}
