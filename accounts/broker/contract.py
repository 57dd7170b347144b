"""The broker contract: what the rest of the project may rely on when it talks to Alpaca.

Errors: every failure talking to Alpaca is one of these. ``code`` goes straight into the API's error body
(docs/api.md, "Errors"); its HTTP status is the error table's (``opitios/errors.py``), listed here for reading:

- ``BrokerError``          502 ``broker_error``          (unexpected upstream answer)
- ``BrokerUnavailable``    503 ``broker_unavailable``    (500/502/503 upstream, connection refused)
- ``BrokerTimeout``        504 ``broker_timeout``        (connect/read timeout, upstream 504)
- ``UpstreamRateLimited``  429 ``upstream_rate_limited`` (Alpaca's 429 or our per-account budget), ``retry_after``
- ``BrokerRejected``       422 ``broker_rejected``       (Alpaca refused the request: 403 buying power, 422 invalid,
                                                           duplicate client_order_id, not cancelable; ``upstream_code``)
- ``BrokerNotFound``       404 ``not_found``

Values are frozen dataclasses in Decimal and aware UTC datetimes; ``AccountBroker`` and ``MarketData``
are the two interfaces, implemented over alpaca-py in ``adapter`` and ``market``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from opitios.errors import error_status

# The bar timeframes the API accepts, and the span of one bar.
TIMEFRAMES: dict[str, timedelta] = {
    "1Min": timedelta(minutes=1),
    "5Min": timedelta(minutes=5),
    "15Min": timedelta(minutes=15),
    "1Hour": timedelta(hours=1),
    "1Day": timedelta(days=1),
}


class BrokerError(Exception):
    code = "broker_error"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        upstream_code: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.upstream_status = upstream_status
        self.upstream_code = upstream_code
        self.retry_after = retry_after

    @property
    def http_status(self) -> int:
        """The status the error table answers this error with (``opitios/errors.py``)."""
        return error_status(self.code, default=502)


class BrokerUnavailable(BrokerError):
    code = "broker_unavailable"


class BrokerTimeout(BrokerError):
    code = "broker_timeout"


class UpstreamRateLimited(BrokerError):
    code = "upstream_rate_limited"


class BrokerRejected(BrokerError):
    code = "broker_rejected"


class BrokerNotFound(BrokerError):
    code = "not_found"


@dataclass(frozen=True)
class AccountInfo:
    account_number: str
    status: str
    cash: Decimal
    buying_power: Decimal
    equity: Decimal
    currency: str = "USD"


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str  # buy | sell
    type: str  # market | limit | stop | stop_limit | trailing_stop
    time_in_force: str  # sent as given
    client_order_id: str
    asset_class: str = "us_equity"  # us_equity | us_option
    qty: Decimal | None = None
    notional: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    extended_hours: bool = False
    order_class: str = "simple"  # simple | bracket | oco | oto
    take_profit_limit_price: Decimal | None = None  # the take_profit leg
    stop_loss_stop_price: Decimal | None = None  # the stop_loss leg
    stop_loss_limit_price: Decimal | None = None
    trail_price: Decimal | None = None  # trailing_stop: exactly one of the two
    trail_percent: Decimal | None = None


@dataclass(frozen=True)
class ReplaceRequest:
    """Alpaca's PATCH /v2/orders/{id}: what changes (None: unchanged); the new order gets ``client_order_id``."""

    client_order_id: str
    qty: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail: Decimal | None = None  # the new trail_price or trail_percent, whichever the order has
    time_in_force: str | None = None


@dataclass(frozen=True)
class BrokerOrder:
    id: str
    client_order_id: str
    symbol: str
    asset_class: str
    side: str
    type: str
    time_in_force: str
    status: str
    qty: Decimal | None
    notional: Decimal | None
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    created_at: datetime | None  # aware UTC
    submitted_at: datetime | None  # aware UTC
    filled_at: datetime | None
    canceled_at: datetime | None
    extended_hours: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    order_class: str = "simple"
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None  # a trailing stop's high (low) water mark
    legs: tuple[BrokerOrder, ...] = ()  # a bracket's / oto's exits, an oco's stop leg
    replaces: str | None = None
    replaced_by: str | None = None


@dataclass(frozen=True)
class TradeUpdate:
    """One event of the trade-updates stream: ``order`` is the order as it stood after the event; the
    execution fields are set on ``fill`` and ``partial_fill``."""

    event: str
    order: BrokerOrder
    timestamp: datetime  # the broker's, aware UTC, microseconds
    received_at: datetime  # ours, aware UTC
    qty: Decimal | None = None
    price: Decimal | None = None
    position_qty: Decimal | None = None
    execution_id: str = ""


@dataclass(frozen=True)
class Position:
    symbol: str
    asset_class: str
    side: str  # long | short
    qty: Decimal  # signed: negative for short
    qty_available: Decimal
    avg_entry_price: Decimal
    current_price: Decimal | None
    market_value: Decimal | None
    cost_basis: Decimal
    unrealized_pl: Decimal | None
    unrealized_plpc: Decimal | None


@dataclass(frozen=True)
class Quote:
    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    bid_size: Decimal | None
    ask_size: Decimal | None
    timestamp: datetime | None


@dataclass(frozen=True)
class Bar:
    timestamp: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trade_count: int | None
    vwap: Decimal | None


@dataclass(frozen=True)
class OptionContractQuote:
    symbol: str
    quote: Quote | None
    implied_volatility: Decimal | None
    greeks: dict[str, Decimal] | None  # delta, gamma, theta, vega, rho


@dataclass(frozen=True)
class Clock:
    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


@dataclass(frozen=True)
class EquityPoint:
    """One point of an account's portfolio history: the equity at ``at`` and its P&L from the period's base."""

    at: datetime  # aware UTC
    equity: Decimal | None
    profit_loss: Decimal | None


class AccountBroker(Protocol):
    """Trading calls on one account."""

    account_id: str
    paper: bool

    def get_account(self, *, timeout: float | None = None) -> AccountInfo: ...
    def get_positions(self) -> list[Position]: ...
    def get_position(self, symbol: str, *, timeout: float | None = None) -> Position | None: ...
    def submit_order(self, order: OrderRequest) -> BrokerOrder: ...
    def get_order(self, order_id: str) -> BrokerOrder: ...
    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None: ...
    def list_orders(self, *, status: str = "open", limit: int = 100, symbols: list[str] | None = None,
                    after: datetime | None = None, timeout: float | None = None) -> list[BrokerOrder]: ...
    def cancel_order(self, order_id: str) -> None: ...
    def replace_order(self, order_id: str, request: ReplaceRequest) -> BrokerOrder: ...
    def get_clock(self) -> Clock: ...
    def get_portfolio_history(self, *, period: str = "1M") -> list[EquityPoint]: ...


class MarketData(Protocol):
    """Market data over any enabled account's credentials, routed by ``trading.routing_strategy``
    (docs/architecture.md, "The broker seam")."""

    def stock_quotes(self, symbols: list[str], *, account_id: str | None = None, routing_key: str | None = None,
                     timeout: float | None = None) -> dict[str, Quote]: ...
    def stock_bars(self, symbol: str, *, timeframe: str, start: datetime | None, end: datetime | None, limit: int, account_id: str | None = None, routing_key: str | None = None) -> list[Bar]: ...
    def option_chain(self, underlying: str, *, expiration_date=None, option_type: str | None = None, account_id: str | None = None, routing_key: str | None = None) -> list[OptionContractQuote]: ...
    def option_quotes(self, symbols: list[str], *, account_id: str | None = None, routing_key: str | None = None,
                      timeout: float | None = None) -> dict[str, Quote]: ...
