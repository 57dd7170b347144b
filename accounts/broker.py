"""The one seam to Alpaca (SPEC §4). The only module in the project that imports alpaca-py.

CONTRACT (agreed between the accounts, trading and sell-bot work; the accounts issue implements it):

Errors — every failure talking to Alpaca is one of these; the API maps ``code``/``http_status``
straight into the error body of SPEC §5:

- ``BrokerError``          502 ``broker_error``          (unexpected upstream answer)
- ``BrokerUnavailable``    503 ``broker_unavailable``    (500/502/503 upstream, connection refused)
- ``BrokerTimeout``        504 ``broker_timeout``        (connect/read timeout, upstream 504)
- ``UpstreamRateLimited``  429 ``upstream_rate_limited`` (Alpaca's 429 or our per-account budget), ``retry_after``
- ``BrokerRejected``       422 ``broker_rejected``       (Alpaca refused the request: 403 buying power, 422 invalid,
                                                           duplicate client_order_id, not cancelable; ``upstream_code``)
- ``BrokerNotFound``       404 ``not_found``

Per-process clients: ``broker_for(account)`` returns the ``AccountBroker`` of an enabled account (built at
first use or at process start, without network calls). ``market_data()`` returns the ``MarketData`` router.
No SDK sleep-retries ever run on a request thread.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accounts.models import AlpacaAccount


class BrokerError(Exception):
    code = "broker_error"
    http_status = 502

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


class BrokerUnavailable(BrokerError):
    code = "broker_unavailable"
    http_status = 503


class BrokerTimeout(BrokerError):
    code = "broker_timeout"
    http_status = 504


class UpstreamRateLimited(BrokerError):
    code = "upstream_rate_limited"
    http_status = 429


class BrokerRejected(BrokerError):
    code = "broker_rejected"
    http_status = 422


class BrokerNotFound(BrokerError):
    code = "not_found"
    http_status = 404


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
    type: str  # market | limit | stop | stop_limit
    time_in_force: str  # sent as given
    client_order_id: str
    asset_class: str = "us_equity"  # us_equity | us_option
    qty: Decimal | None = None
    notional: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    extended_hours: bool = False


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


class AccountBroker:
    """Trading calls on one account. Implemented by the accounts issue."""

    account_id: str
    paper: bool

    def get_account(self, *, timeout: float | None = None) -> AccountInfo: ...
    def get_positions(self) -> list[Position]: ...
    def get_position(self, symbol: str) -> Position | None: ...
    def submit_order(self, order: OrderRequest) -> BrokerOrder: ...
    def get_order(self, order_id: str) -> BrokerOrder: ...
    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None: ...
    def list_orders(self, *, status: str = "open", limit: int = 100, symbols: list[str] | None = None) -> list[BrokerOrder]: ...
    def cancel_order(self, order_id: str) -> None: ...
    def get_clock(self) -> Clock: ...


class MarketData:
    """Market data over any enabled account's credentials, routed per SPEC §4."""

    def stock_quotes(self, symbols: list[str], *, account_id: str | None = None, routing_key: str | None = None) -> dict[str, Quote]: ...
    def stock_bars(self, symbol: str, *, timeframe: str, start: datetime | None, end: datetime | None, limit: int, account_id: str | None = None, routing_key: str | None = None) -> list[Bar]: ...
    def option_chain(self, underlying: str, *, expiration_date=None, option_type: str | None = None, account_id: str | None = None, routing_key: str | None = None) -> list[OptionContractQuote]: ...
    def option_quotes(self, symbols: list[str], *, account_id: str | None = None, routing_key: str | None = None) -> dict[str, Quote]: ...


# =====================================================================================
# Implementation (the accounts issue). Everything below is private to this module except
# ``broker_for``, ``market_data``, ``probe_account``, ``pool_accounts`` and ``reset_pool``.
# =====================================================================================

import logging  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from datetime import UTC, date  # noqa: E402
from email.utils import parsedate_to_datetime  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import requests  # noqa: E402
from alpaca.common.exceptions import APIError  # noqa: E402
from alpaca.data.historical.option import OptionHistoricalDataClient  # noqa: E402
from alpaca.data.historical.stock import StockHistoricalDataClient  # noqa: E402
from alpaca.data.requests import (  # noqa: E402
    OptionChainRequest,
    OptionLatestQuoteRequest,
    StockBarsRequest,
    StockLatestQuoteRequest,
)
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit  # noqa: E402
from alpaca.trading.client import TradingClient  # noqa: E402
from alpaca.trading.enums import ContractType, OrderSide, QueryOrderStatus, TimeInForce  # noqa: E402
from alpaca.trading.requests import (  # noqa: E402
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
)
from django.conf import settings  # noqa: E402
from pydantic import ValidationError  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402
from requests.sessions import merge_setting  # noqa: E402
from requests.utils import get_environ_proxies  # noqa: E402
from urllib3.exceptions import ReadTimeoutError  # noqa: E402

from accounts import budget, routing  # noqa: E402

logger = logging.getLogger("opitios.broker")

# --- HTTP: keep-alive pool bounded by max_connections, explicit timeouts, no retries ------------

_timeout_override = threading.local()


class TimeoutSession(requests.Session):
    """alpaca-py calls ``session.request`` without a timeout; this one always has one."""

    def __init__(self, *, max_connections: int, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.default_timeout = timeout
        self._environment: dict[tuple, tuple[dict, str | None]] = {}
        # pool_maxsize bounds the kept-alive connections per host; max_retries=0: no urllib3 retries.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max_connections, max_retries=0)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method, url, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = getattr(_timeout_override, "value", None) or self.default_timeout
        return super().request(method, url, **kwargs)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        """As requests does, but the environment (proxy variables, CA bundle) is read once per
        origin: requests walks the whole of ``os.environ`` on every call, about a millisecond
        on the order path."""
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, no_proxy)
        found = self._environment.get(key)
        if found is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            found = self._environment[key] = (get_environ_proxies(url, no_proxy=no_proxy), bundle)
        env_proxies, bundle = found
        if proxies is not None:
            for k, v in env_proxies.items():
                proxies.setdefault(k, v)
        if verify is True or verify is None:
            verify = bundle or verify
        return {
            "proxies": merge_setting(proxies, self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }


@contextmanager
def _timeout(read_seconds: float | None) -> Iterator[None]:
    if read_seconds is None:
        yield
        return
    previous = getattr(_timeout_override, "value", None)
    _timeout_override.value = (min(settings.BROKER_CONNECT_TIMEOUT, read_seconds), read_seconds)
    try:
        yield
    finally:
        _timeout_override.value = previous


def _adopt(client, session: requests.Session) -> None:
    """Share the account's session and switch off the SDK's sleep-and-retry on 429/504."""
    client._session.close()
    client._session = session
    client._retry = 0
    client._retry_codes = []
    client._retry_wait = 0


# --- errors --------------------------------------------------------------------------------


def _retry_after(response) -> int | None:
    if response is None:
        return None
    headers = response.headers
    value = headers.get("Retry-After")
    if value:
        try:
            return max(1, int(float(value)))
        except ValueError:
            try:
                return max(1, int(parsedate_to_datetime(value).timestamp() - time.time()))
            except (TypeError, ValueError):
                pass
    reset = headers.get("X-Ratelimit-Reset")
    if reset:
        try:
            return max(1, int(float(reset) - time.time()))
        except ValueError:
            pass
    return None


def _api_error_detail(exc: APIError) -> tuple[int | None, str]:
    try:
        return int(exc.code), str(exc.message)
    except Exception:  # not Alpaca's {code, message} body (a proxy page, empty body)
        return None, ""


def map_error(exc: BaseException, *, account_id: str = "") -> BrokerError:
    """The typed error for any failure talking to Alpaca."""
    where = f" (account {account_id})" if account_id else ""
    if isinstance(exc, BrokerError):
        return exc
    if isinstance(exc, requests.Timeout):
        return BrokerTimeout(f"Alpaca did not answer in time{where}.")
    if isinstance(exc, requests.ConnectionError):
        if exc.args and isinstance(exc.args[0], ReadTimeoutError):
            return BrokerTimeout(f"Alpaca did not answer in time{where}.")
        return BrokerUnavailable(f"Alpaca is unreachable{where}.")
    if isinstance(exc, APIError):
        status = exc.status_code
        code, message = _api_error_detail(exc)
        detail = f": {message}" if message else ""
        kwargs = {"upstream_status": status, "upstream_code": code}
        if status == 429:
            return UpstreamRateLimited(f"Alpaca's rate limit was reached{where}.", retry_after=_retry_after(exc.response) or 60, **kwargs)
        if status in (504, 408):
            return BrokerTimeout(f"Alpaca timed out{where}.", **kwargs)
        if status == 401:
            return BrokerError(f"Alpaca refused the account's credentials{where}.", **kwargs)
        if status == 404:
            return BrokerNotFound(f"Not found at Alpaca{where}{detail}.", **kwargs)
        if status is not None and 400 <= status < 500:
            return BrokerRejected(f"Alpaca rejected the request{where}{detail}", **kwargs)
        if status is not None and status >= 500:
            return BrokerUnavailable(f"Alpaca is unavailable (HTTP {status}){where}.", **kwargs)
        return BrokerError(f"Unexpected answer from Alpaca{where}.", **kwargs)
    if isinstance(exc, (ValidationError, ValueError, KeyError, TypeError, requests.RequestException)):
        return BrokerError(f"Unexpected answer from Alpaca{where}.")
    return BrokerError(f"Unexpected failure talking to Alpaca{where}.")


# --- SDK models -> contract dataclasses ------------------------------------------------------


def _dec(value) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _val(value) -> str:
    return getattr(value, "value", value) or ""


def _account_info(a) -> AccountInfo:
    return AccountInfo(
        account_number=str(a.account_number),
        status=_val(a.status),
        cash=_dec(a.cash) or Decimal(0),
        buying_power=_dec(a.buying_power) or Decimal(0),
        equity=_dec(a.equity) or Decimal(0),
        currency=a.currency or "USD",
    )


def _order(o) -> BrokerOrder:
    return BrokerOrder(
        id=str(o.id),
        client_order_id=o.client_order_id,
        symbol=o.symbol or "",
        asset_class=_val(o.asset_class),
        side=_val(o.side),
        type=_val(o.type or o.order_type),
        time_in_force=_val(o.time_in_force),
        status=_val(o.status),
        qty=_dec(o.qty),
        notional=_dec(o.notional),
        filled_qty=_dec(o.filled_qty) or Decimal(0),
        filled_avg_price=_dec(o.filled_avg_price),
        limit_price=_dec(o.limit_price),
        stop_price=_dec(o.stop_price),
        created_at=_utc(o.created_at),
        submitted_at=_utc(o.submitted_at),
        filled_at=_utc(o.filled_at),
        canceled_at=_utc(o.canceled_at),
        extended_hours=bool(o.extended_hours),
        raw=o.model_dump(mode="json", exclude_none=True),
    )


def _position(p) -> Position:
    side = _val(p.side)
    qty = _dec(p.qty) or Decimal(0)
    if side == "short" and qty > 0:
        qty = -qty
    return Position(
        symbol=p.symbol,
        asset_class=_val(p.asset_class),
        side=side,
        qty=qty,
        qty_available=_dec(p.qty_available) if p.qty_available is not None else qty,
        avg_entry_price=_dec(p.avg_entry_price) or Decimal(0),
        current_price=_dec(p.current_price),
        market_value=_dec(p.market_value),
        cost_basis=_dec(p.cost_basis) or Decimal(0),
        unrealized_pl=_dec(p.unrealized_pl),
        unrealized_plpc=_dec(p.unrealized_plpc),
    )


def _quote(symbol: str, q) -> Quote:
    return Quote(
        symbol=symbol,
        bid=_dec(q.bid_price),
        ask=_dec(q.ask_price),
        bid_size=_dec(q.bid_size),
        ask_size=_dec(q.ask_size),
        timestamp=_utc(q.timestamp),
    )


def _bar(b) -> Bar:
    return Bar(
        timestamp=_utc(b.timestamp),
        open=_dec(b.open),
        high=_dec(b.high),
        low=_dec(b.low),
        close=_dec(b.close),
        volume=_dec(b.volume),
        trade_count=int(b.trade_count) if b.trade_count is not None else None,
        vwap=_dec(b.vwap),
    )


def _option_contract(symbol: str, snap) -> OptionContractQuote:
    greeks = None
    if snap.greeks is not None:
        greeks = {name: _dec(getattr(snap.greeks, name)) for name in ("delta", "gamma", "theta", "vega", "rho")}
    return OptionContractQuote(
        symbol=symbol,
        quote=_quote(symbol, snap.latest_quote) if snap.latest_quote is not None else None,
        implied_volatility=_dec(snap.implied_volatility),
        greeks=greeks,
    )


_TIMEFRAMES = {
    "1Min": TimeFrame(1, TimeFrameUnit.Minute),
    "5Min": TimeFrame(5, TimeFrameUnit.Minute),
    "15Min": TimeFrame(15, TimeFrameUnit.Minute),
    "1Hour": TimeFrame(1, TimeFrameUnit.Hour),
    "1Day": TimeFrame(1, TimeFrameUnit.Day),
}


def _order_request(order: OrderRequest):
    common = {
        "symbol": order.symbol,
        "side": OrderSide(order.side),
        "time_in_force": TimeInForce(order.time_in_force),
        "client_order_id": order.client_order_id,
        "extended_hours": order.extended_hours or None,
    }
    if order.qty is not None:
        common["qty"] = float(order.qty)
    if order.notional is not None:
        common["notional"] = float(order.notional)
    price = {}
    if order.limit_price is not None:
        price["limit_price"] = float(order.limit_price)
    if order.stop_price is not None:
        price["stop_price"] = float(order.stop_price)
    cls = {"market": MarketOrderRequest, "limit": LimitOrderRequest, "stop": StopOrderRequest, "stop_limit": StopLimitOrderRequest}[order.type]
    return cls(**common, **price)


# --- one account's clients ---------------------------------------------------------------------

_in_flight: dict[int, int] = {}
_in_flight_lock = threading.Lock()


def in_flight(pk: int) -> int:
    """Requests to Alpaca this process has in flight for the account."""
    return _in_flight.get(pk, 0)


@dataclass(frozen=True)
class _Spec:
    pk: int
    account_id: str
    paper: bool
    rate_limit_per_minute: int
    fingerprint: tuple


def _fingerprint(row: dict) -> tuple:
    return (
        row["api_key_encrypted"],
        row["secret_key_encrypted"],
        row["paper_trading"],
        row["max_connections"],
        settings.ALPACA_PAPER_URL,
        settings.ALPACA_LIVE_URL,
        settings.ALPACA_DATA_URL,
        settings.BROKER_CONNECT_TIMEOUT,
        settings.BROKER_READ_TIMEOUT,
    )


class AlpacaAccountBroker(AccountBroker):
    """alpaca-py clients for one account, on one keep-alive session. Built without network calls."""

    def __init__(self, spec: _Spec, *, api_key: str, secret_key: str, max_connections: int, paper_endpoint: bool | None = None) -> None:
        self.pk = spec.pk
        self.account_id = spec.account_id
        self.paper = spec.paper
        self.rate_limit_per_minute = spec.rate_limit_per_minute
        self.fingerprint = spec.fingerprint
        endpoint_paper = spec.paper if paper_endpoint is None else paper_endpoint
        self._session = TimeoutSession(
            max_connections=max_connections, timeout=(settings.BROKER_CONNECT_TIMEOUT, settings.BROKER_READ_TIMEOUT)
        )
        trading_url = settings.ALPACA_PAPER_URL if endpoint_paper else settings.ALPACA_LIVE_URL
        self._trading = TradingClient(api_key, secret_key, paper=endpoint_paper, raw_data=False, url_override=trading_url)
        self._stocks = StockHistoricalDataClient(api_key, secret_key, raw_data=False, url_override=settings.ALPACA_DATA_URL)
        self._options = OptionHistoricalDataClient(api_key, secret_key, raw_data=False, url_override=settings.ALPACA_DATA_URL)
        for client in (self._trading, self._stocks, self._options):
            _adopt(client, self._session)

    def __repr__(self) -> str:
        return f"<AlpacaAccountBroker {self.account_id} {'paper' if self.paper else 'live'}>"

    def close(self) -> None:
        self._session.close()

    def _call(self, fn: Callable, *args, timeout: float | None = None, **kwargs):
        reservation = budget.reserve(self.pk, self.rate_limit_per_minute)
        if not reservation.allowed:
            raise UpstreamRateLimited(
                f"The upstream budget of account {self.account_id} ({self.rate_limit_per_minute}/min) is exhausted.",
                retry_after=reservation.retry_after,
            )
        with _in_flight_lock:
            _in_flight[self.pk] = _in_flight.get(self.pk, 0) + 1
        started = time.perf_counter()
        error = False
        try:
            with _timeout(timeout):
                return fn(*args, **kwargs)
        except Exception as exc:
            error = True
            raise map_error(exc, account_id=self.account_id) from exc
        finally:
            with _in_flight_lock:
                _in_flight[self.pk] -= 1
            budget.record(self.pk, latency_ms=(time.perf_counter() - started) * 1000, error=error)

    # --- trading ---
    def get_account(self, *, timeout: float | None = None) -> AccountInfo:
        return _account_info(self._call(self._trading.get_account, timeout=timeout))

    def get_positions(self) -> list[Position]:
        return [_position(p) for p in self._call(self._trading.get_all_positions)]

    def get_position(self, symbol: str) -> Position | None:
        try:
            return _position(self._call(self._trading.get_open_position, symbol))
        except BrokerNotFound:
            return None

    def submit_order(self, order: OrderRequest) -> BrokerOrder:
        try:
            request = _order_request(order)
        except (ValidationError, ValueError, KeyError) as exc:
            raise BrokerRejected(f"The order cannot be sent to Alpaca: {exc.__class__.__name__}.") from exc
        return _order(self._call(self._trading.submit_order, request))

    def get_order(self, order_id: str) -> BrokerOrder:
        return _order(self._call(self._trading.get_order_by_id, order_id))

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        try:
            return _order(self._call(self._trading.get_order_by_client_id, client_order_id))
        except BrokerNotFound:
            return None

    def list_orders(self, *, status: str = "open", limit: int = 100, symbols: list[str] | None = None) -> list[BrokerOrder]:
        request = GetOrdersRequest(status=QueryOrderStatus(status), limit=limit, symbols=symbols or None)
        return [_order(o) for o in self._call(self._trading.get_orders, request)]

    def cancel_order(self, order_id: str) -> None:
        self._call(self._trading.cancel_order_by_id, order_id)

    def get_clock(self) -> Clock:
        c = self._call(self._trading.get_clock)
        return Clock(timestamp=_utc(c.timestamp), is_open=bool(c.is_open), next_open=_utc(c.next_open), next_close=_utc(c.next_close))

    # --- market data (called by the router) ---
    def _stock_quotes(self, symbols: list[str]) -> dict[str, Quote]:
        found = self._call(self._stocks.get_stock_latest_quote, StockLatestQuoteRequest(symbol_or_symbols=symbols))
        return {symbol: _quote(symbol, q) for symbol, q in found.items()}

    def _stock_bars(self, symbol, *, timeframe, start, end, limit) -> list[Bar]:
        try:
            frame = _TIMEFRAMES[timeframe]
        except KeyError:
            raise BrokerRejected(f"Unknown timeframe {timeframe!r}; use one of {', '.join(_TIMEFRAMES)}.") from None
        request = StockBarsRequest(symbol_or_symbols=symbol, timeframe=frame, start=start, end=end, limit=limit)
        barset = self._call(self._stocks.get_stock_bars, request)
        return [_bar(b) for b in barset.data.get(symbol, [])]

    def _option_chain(self, underlying, *, expiration_date, option_type) -> list[OptionContractQuote]:
        request = OptionChainRequest(
            underlying_symbol=underlying,
            expiration_date=expiration_date.isoformat() if isinstance(expiration_date, date) else expiration_date,
            type=ContractType(option_type) if option_type else None,
        )
        found = self._call(self._options.get_option_chain, request)
        return [_option_contract(symbol, snap) for symbol, snap in sorted(found.items())]

    def _option_quotes(self, symbols: list[str]) -> dict[str, Quote]:
        found = self._call(self._options.get_option_latest_quote, OptionLatestQuoteRequest(symbol_or_symbols=symbols))
        return {symbol: _quote(symbol, q) for symbol, q in found.items()}


# --- the per-process pool ----------------------------------------------------------------------

_POOL_FIELDS = (
    "pk", "account_id", "paper_trading", "enabled", "api_key_encrypted", "secret_key_encrypted",
    "rate_limit_per_minute", "max_connections",
)


def _build(row: dict, *, register: bool = True, paper_endpoint: bool | None = None) -> AlpacaAccountBroker:
    from accounts import crypto

    spec = _Spec(row["pk"], row["account_id"], row["paper_trading"], row["rate_limit_per_minute"], _fingerprint(row))
    return AlpacaAccountBroker(
        spec,
        api_key=crypto.decrypt(row["api_key_encrypted"], register=register),
        secret_key=crypto.decrypt(row["secret_key_encrypted"], register=register),
        max_connections=row["max_connections"],
        paper_endpoint=paper_endpoint,
    )


def _row(account: AlpacaAccount) -> dict:
    return {"pk": account.pk, **{f: getattr(account, f) for f in _POOL_FIELDS if f != "pk"}}


class BrokerPool:
    """Every enabled account's clients in this process; notices added, disabled and edited accounts
    (checked at most every ``ACCOUNTS_POOL_REFRESH_SECONDS``) without a restart."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._brokers: dict[int, AlpacaAccountBroker] = {}
        self._enabled: tuple[AlpacaAccountBroker, ...] = ()
        self._by_account_id: dict[str, AlpacaAccountBroker] = {}
        self._version: tuple | None = None
        self._checked_at = 0.0
        self._exhausted: dict[int, float] = {}  # pk -> monotonic time its budget frees up (this process's view)

    def enabled(self) -> tuple[AlpacaAccountBroker, ...]:
        self.refresh()
        return self._enabled

    def get(self, account_id: str) -> AlpacaAccountBroker | None:
        self.refresh()
        return self._by_account_id.get(account_id)

    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < settings.ACCOUNTS_POOL_REFRESH_SECONDS:
            return
        from django.db.models import Count, Max

        from accounts.models import AlpacaAccount

        with self._lock:
            if not force and now - self._checked_at < settings.ACCOUNTS_POOL_REFRESH_SECONDS:
                return
            try:
                agg = AlpacaAccount.objects.aggregate(n=Count("pk"), latest=Max("updated_at"))
                version = (agg["n"], agg["latest"], _fingerprint({k: None for k in _POOL_FIELDS}))
                if force or version != self._version:
                    self._rebuild(list(AlpacaAccount.objects.filter(enabled=True).order_by("account_id").values(*_POOL_FIELDS)))
                    self._version = version
            except Exception as exc:
                if self._version is None and not self._brokers:
                    raise
                logger.error("broker pool refresh failed, keeping the current pool: %s", exc.__class__.__name__)
            self._checked_at = now

    def _rebuild(self, rows: list[dict]) -> None:
        from accounts.crypto import CredentialError
        from opitios.logging import register_secrets

        fresh: dict[int, AlpacaAccountBroker] = {}
        secrets: list[str] = []
        for row in rows:
            existing = self._brokers.get(row["pk"])
            if existing is not None and existing.fingerprint == _fingerprint(row):
                existing.rate_limit_per_minute = row["rate_limit_per_minute"]
                fresh[row["pk"]] = existing
                continue
            try:
                broker = _build(row, register=False)
            except CredentialError as exc:
                logger.error("account=%s cannot join the broker pool: %s", row["account_id"], exc)
                continue
            secrets += [broker._trading._api_key, broker._trading._secret_key]
            fresh[row["pk"]] = broker
        register_secrets(secrets)
        # Replaced clients are not closed here: another thread may be mid-request on them.
        self._brokers = fresh
        self._enabled = tuple(fresh.values())
        self._by_account_id = {b.account_id: b for b in self._enabled}
        logger.info("broker pool ready: %d enabled accounts", len(self._enabled))

    def for_account(self, account: AlpacaAccount) -> AlpacaAccountBroker:
        fingerprint = _fingerprint(_row(account))
        broker = self._brokers.get(account.pk)
        if broker is None or broker.fingerprint != fingerprint:
            with self._lock:
                broker = self._brokers.get(account.pk)
                if broker is None or broker.fingerprint != fingerprint:
                    broker = _build(_row(account))
                    if account.enabled:
                        self._brokers[account.pk] = broker
                        self.invalidate()
        broker.rate_limit_per_minute = account.rate_limit_per_minute
        return broker

    def invalidate(self) -> None:
        """Re-read the accounts table at the next use (after a sync or an admin edit)."""
        self._version = None
        self._checked_at = 0.0

    # --- budget view of this process ---
    def mark_exhausted(self, pk: int, retry_after: int | None) -> None:
        self._exhausted[pk] = time.monotonic() + (retry_after or 1)

    def is_exhausted(self, pk: int) -> bool:
        until = self._exhausted.get(pk)
        if until is None:
            return False
        if time.monotonic() >= until:
            self._exhausted.pop(pk, None)
            return False
        return True

    def close(self) -> None:
        for broker in self._brokers.values():
            broker.close()
        self._brokers = {}
        self._enabled = ()
        self._by_account_id = {}
        self._version = None
        self._checked_at = 0.0
        self._exhausted.clear()


_pool = BrokerPool()


def reset_pool() -> None:
    """Forget every client (tests, and a forked child that must not share its parent's sockets)."""
    global _pool
    _pool.close()
    _pool = BrokerPool()


os.register_at_fork(after_in_child=lambda: globals().__setitem__("_pool", BrokerPool()))


def pool() -> BrokerPool:
    return _pool


def pool_accounts() -> tuple[AlpacaAccountBroker, ...]:
    """Build (or refresh) this process's pool and return its enabled accounts."""
    return _pool.enabled()


def broker_for(account: AlpacaAccount) -> AccountBroker:
    """The clients of ``account`` on its configured endpoint (paper or live). Trading is never routed:
    callers name the account; they check that it is enabled and not mismatched."""
    return _pool.for_account(account)


def probe_account(account: AlpacaAccount, *, paper: bool, timeout: float | None = None) -> AccountInfo:
    """``get_account`` on the paper or live endpoint regardless of the configured flag (type detection)."""
    broker = _build(_row(account), paper_endpoint=paper)
    try:
        return broker.get_account(timeout=timeout)
    finally:
        broker.close()


# --- market-data routing -------------------------------------------------------------------------

LEAST_LOADED_SAMPLE = 16  # least_loaded compares at most this many accounts (power-of-d choices)
MAX_UPSTREAM_429 = 3


class AlpacaMarketData(MarketData):
    def _candidates(self, *, account_id: str | None, routing_key: str | None, default_key: str) -> tuple[list[AlpacaAccountBroker], bool]:
        if account_id is not None:
            broker = _pool.get(account_id)
            if broker is None:
                raise BrokerNotFound(f"No enabled account {account_id!r} can serve market data.")
            return [broker], True
        brokers = _pool.enabled()
        if not brokers:
            raise BrokerUnavailable("No enabled account can serve market data.")
        usable = [b for b in brokers if not _pool.is_exhausted(b.pk)] or list(brokers)
        by_id = {b.account_id: b for b in usable}
        ids = list(by_id)
        if routing_key is not None:
            order = routing.rendezvous(routing_key, ids)
        else:
            from opitios.config import current_config

            strategy = current_config().trading.routing_strategy
            if strategy == "hash":
                order = routing.rendezvous(default_key, ids)
            elif strategy == "random":
                order = routing.shuffled(ids)
            elif strategy == "least_loaded":
                sample = routing.shuffled(ids)[:LEAST_LOADED_SAMPLE]
                stats = budget.stats_for({by_id[a].pk: by_id[a].rate_limit_per_minute for a in sample})
                order = routing.least_loaded(
                    sample,
                    remaining=lambda a: stats[by_id[a].pk].budget_remaining,
                    in_flight=lambda a: in_flight(by_id[a].pk),
                )
                order += [a for a in ids if a not in set(sample)]
            else:
                order = routing.round_robin(budget.shared_sequence("market_data_rr") - 1, ids)
        return [by_id[a] for a in order], False

    def _route(self, fn_name: str, *args, account_id, routing_key, default_key, **kwargs):
        candidates, explicit = self._candidates(account_id=account_id, routing_key=routing_key, default_key=default_key)
        limited: list[UpstreamRateLimited] = []
        for broker in candidates:
            try:
                return getattr(broker, fn_name)(*args, **kwargs)
            except UpstreamRateLimited as exc:
                if explicit:
                    raise
                _pool.mark_exhausted(broker.pk, exc.retry_after)
                limited.append(exc)
                if exc.upstream_status == 429 and sum(e.upstream_status == 429 for e in limited) >= MAX_UPSTREAM_429:
                    break
        retry_after = min((e.retry_after or 60) for e in limited) if limited else 60
        raise UpstreamRateLimited("Every account's upstream budget is exhausted; retry shortly.", retry_after=retry_after)

    def stock_quotes(self, symbols, *, account_id=None, routing_key=None):
        return self._route("_stock_quotes", list(symbols), account_id=account_id, routing_key=routing_key, default_key=",".join(symbols))

    def stock_bars(self, symbol, *, timeframe, start, end, limit, account_id=None, routing_key=None):
        return self._route(
            "_stock_bars", symbol, timeframe=timeframe, start=start, end=end, limit=limit,
            account_id=account_id, routing_key=routing_key, default_key=symbol,
        )

    def option_chain(self, underlying, *, expiration_date=None, option_type=None, account_id=None, routing_key=None):
        return self._route(
            "_option_chain", underlying, expiration_date=expiration_date, option_type=option_type,
            account_id=account_id, routing_key=routing_key, default_key=underlying,
        )

    def option_quotes(self, symbols, *, account_id=None, routing_key=None):
        return self._route("_option_quotes", list(symbols), account_id=account_id, routing_key=routing_key, default_key=",".join(symbols))


_market_data = AlpacaMarketData()


def market_data() -> MarketData:
    return _market_data
