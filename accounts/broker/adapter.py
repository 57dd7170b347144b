"""The alpaca-py adapter: the only module in the project that imports alpaca-py.

``AlpacaAccountBroker`` implements ``AccountBroker`` (and the per-account calls the market-data router
makes) for one account; ``map_error`` turns every SDK, HTTP and parsing failure into a contract error;
the converters turn SDK models into the contract's dataclasses. No SDK sleep-retries ever run on a
request thread: every client shares the account's ``TimeoutSession`` with retries switched off.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import (
    OptionChainRequest,
    OptionLatestQuoteRequest,
    StockBarsRequest,
    StockLatestQuoteRequest,
)
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import ContractType, OrderClass, OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    GetOrdersRequest,
    GetPortfolioHistoryRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)
from django.conf import settings
from pydantic import ValidationError
from urllib3.exceptions import ReadTimeoutError

from accounts import budget
from accounts.broker.contract import (
    TIMEFRAMES,
    AccountBroker,
    AccountInfo,
    Bar,
    BrokerError,
    BrokerNotFound,
    BrokerOrder,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    Clock,
    EquityPoint,
    OptionContractQuote,
    OrderRequest,
    Position,
    Quote,
    ReplaceRequest,
    UpstreamRateLimited,
)
from accounts.broker.convert import (
    order_from_json,
    to_account_info,
    to_bar,
    to_equity_points,
    to_option_contract,
    to_order,
    to_position,
    to_quote,
    to_utc,
)
from accounts.broker.session import TimeoutSession, read_timeout
from opitios.metrics import upstream_observed


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


_UNITS = ((timedelta(days=1), TimeFrameUnit.Day), (timedelta(hours=1), TimeFrameUnit.Hour), (timedelta(minutes=1), TimeFrameUnit.Minute))


def _timeframe(span: timedelta) -> TimeFrame:
    for unit_span, unit in _UNITS:
        if span % unit_span == timedelta(0):
            return TimeFrame(int(span / unit_span), unit)
    raise ValueError(f"No Alpaca timeframe for {span}.")


_TIMEFRAMES = {name: _timeframe(span) for name, span in TIMEFRAMES.items()}


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
    for name in ("limit_price", "stop_price", "trail_price", "trail_percent"):
        if getattr(order, name) is not None:
            price[name] = float(getattr(order, name))
    if order.order_class != "simple":
        common["order_class"] = OrderClass(order.order_class)
        if order.take_profit_limit_price is not None:
            common["take_profit"] = TakeProfitRequest(limit_price=float(order.take_profit_limit_price))
        if order.stop_loss_stop_price is not None:
            common["stop_loss"] = StopLossRequest(
                stop_price=float(order.stop_loss_stop_price),
                limit_price=None if order.stop_loss_limit_price is None else float(order.stop_loss_limit_price),
            )
    cls = {"market": MarketOrderRequest, "limit": LimitOrderRequest, "stop": StopOrderRequest, "stop_limit": StopLimitOrderRequest,
           "trailing_stop": TrailingStopOrderRequest}[order.type]
    return cls(**common, **price)


def _replace_request(request: ReplaceRequest) -> ReplaceOrderRequest:
    fields = {"client_order_id": request.client_order_id}
    if request.qty is not None:
        fields["qty"] = int(request.qty)  # Alpaca replaces whole shares only (the service refuses fractions)
    for name in ("limit_price", "stop_price", "trail"):
        if getattr(request, name) is not None:
            fields[name] = float(getattr(request, name))
    if request.time_in_force is not None:
        fields["time_in_force"] = TimeInForce(request.time_in_force)
    return ReplaceOrderRequest(**fields)


# --- one account's clients ---------------------------------------------------------------------

_in_flight: dict[int, int] = {}
_in_flight_lock = threading.Lock()


def in_flight(pk: int) -> int:
    """Requests to Alpaca this process has in flight for the account."""
    return _in_flight.get(pk, 0)


@dataclass(frozen=True)
class ClientSpec:
    pk: int
    account_id: str
    paper: bool
    rate_limit_per_minute: int
    fingerprint: tuple


class AlpacaAccountBroker(AccountBroker):
    """alpaca-py clients for one account, on one keep-alive session. Built without network calls."""

    def __init__(self, spec: ClientSpec, *, api_key: str, secret_key: str, max_connections: int, paper_endpoint: bool | None = None) -> None:
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
        # The order calls take Alpaca's JSON as it comes: building alpaca-py's Order model and dumping
        # it again cost about 5x what order_from_json does (docs/architecture.md, "The broker seam").
        self._orders = TradingClient(api_key, secret_key, paper=endpoint_paper, raw_data=True, url_override=trading_url)
        self._stocks = StockHistoricalDataClient(api_key, secret_key, raw_data=False, url_override=settings.ALPACA_DATA_URL)
        self._options = OptionHistoricalDataClient(api_key, secret_key, raw_data=False, url_override=settings.ALPACA_DATA_URL)
        for client in (self._trading, self._orders, self._stocks, self._options):
            _adopt(client, self._session)

    def __repr__(self) -> str:
        return f"<AlpacaAccountBroker {self.account_id} {'paper' if self.paper else 'live'}>"

    def close(self) -> None:
        self._session.close()

    def _call(self, fn: Callable, *args, timeout: float | None = None, **kwargs):
        reservation = budget.reserve(self.pk, self.rate_limit_per_minute)
        if not reservation.allowed:
            upstream_observed(self.account_id, result="budget_exhausted")
            raise UpstreamRateLimited(
                f"The upstream budget of account {self.account_id} ({self.rate_limit_per_minute}/min) is exhausted.",
                retry_after=reservation.retry_after,
            )
        with _in_flight_lock:
            _in_flight[self.pk] = _in_flight.get(self.pk, 0) + 1
        started = time.perf_counter()
        error = False
        try:
            with read_timeout(timeout):
                return fn(*args, **kwargs)
        except Exception as exc:
            error = True
            mapped = map_error(exc, account_id=self.account_id)
            upstream_observed(self.account_id, result="error", status=getattr(mapped, "upstream_status", None))
            raise mapped from exc
        finally:
            with _in_flight_lock:
                _in_flight[self.pk] -= 1
            budget.record(self.pk, latency_ms=(time.perf_counter() - started) * 1000, error=error)
            if not error:
                upstream_observed(self.account_id, result="ok")

    # --- trading ---
    def get_account(self, *, timeout: float | None = None) -> AccountInfo:
        return to_account_info(self._call(self._trading.get_account, timeout=timeout))

    def get_positions(self) -> list[Position]:
        return [to_position(p) for p in self._call(self._trading.get_all_positions)]

    def get_position(self, symbol: str, *, timeout: float | None = None) -> Position | None:
        try:
            return to_position(self._call(self._trading.get_open_position, symbol, timeout=timeout))
        except BrokerNotFound:
            return None

    def submit_order(self, order: OrderRequest) -> BrokerOrder:
        try:
            request = _order_request(order)
        except (ValidationError, ValueError, KeyError) as exc:
            raise BrokerRejected(f"The order cannot be sent to Alpaca: {exc.__class__.__name__}.") from exc
        return self._call(lambda: order_from_json(self._orders.submit_order(request)))

    def replace_order(self, order_id: str, request: ReplaceRequest) -> BrokerOrder:
        try:
            body = _replace_request(request)
        except (ValidationError, ValueError, KeyError) as exc:
            raise BrokerRejected(f"The replacement cannot be sent to Alpaca: {exc.__class__.__name__}.") from exc
        return to_order(self._call(self._trading.replace_order_by_id, order_id, body))

    def get_order(self, order_id: str) -> BrokerOrder:
        # nested: a bracket's, oto's or oco's legs come inside it
        return self._call(lambda: order_from_json(self._orders.get_order_by_id(order_id, GetOrderByIdRequest(nested=True))))

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        try:
            return self._call(lambda: order_from_json(self._orders.get_order_by_client_id(client_order_id)))
        except BrokerNotFound:
            return None

    def list_orders(self, *, status: str = "open", limit: int = 100, symbols: list[str] | None = None,
                    after: datetime | None = None, timeout: float | None = None) -> list[BrokerOrder]:
        request = GetOrdersRequest(status=QueryOrderStatus(status), limit=limit, symbols=symbols or None, after=after)
        return [to_order(o) for o in self._call(self._trading.get_orders, request, timeout=timeout)]

    def cancel_order(self, order_id: str) -> None:
        self._call(self._trading.cancel_order_by_id, order_id)

    def get_clock(self) -> Clock:
        c = self._call(self._trading.get_clock)
        return Clock(timestamp=to_utc(c.timestamp), is_open=bool(c.is_open), next_open=to_utc(c.next_open), next_close=to_utc(c.next_close))

    def get_portfolio_history(self, *, period: str = "1M") -> list[EquityPoint]:
        """Daily equity over ``period`` (``1W``, ``1M``, ``3M``, ``1A``): the desk's equity curve."""
        request = GetPortfolioHistoryRequest(period=period, timeframe="1D")
        return to_equity_points(self._call(self._trading.get_portfolio_history, request))

    # --- market data (called by the router) ---
    def _stock_quotes(self, symbols: list[str], *, timeout: float | None = None) -> dict[str, Quote]:
        found = self._call(self._stocks.get_stock_latest_quote, StockLatestQuoteRequest(symbol_or_symbols=symbols), timeout=timeout)
        return {symbol: to_quote(symbol, q) for symbol, q in found.items()}

    def _stock_bars(self, symbol, *, timeframe, start, end, limit) -> list[Bar]:
        try:
            frame = _TIMEFRAMES[timeframe]
        except KeyError:
            raise BrokerRejected(f"Unknown timeframe {timeframe!r}; use one of {', '.join(_TIMEFRAMES)}.") from None
        request = StockBarsRequest(symbol_or_symbols=symbol, timeframe=frame, start=start, end=end, limit=limit)
        barset = self._call(self._stocks.get_stock_bars, request)
        return [to_bar(b) for b in barset.data.get(symbol, [])]

    def _option_chain(self, underlying, *, expiration_date, option_type) -> list[OptionContractQuote]:
        request = OptionChainRequest(
            underlying_symbol=underlying,
            expiration_date=expiration_date.isoformat() if isinstance(expiration_date, date) else expiration_date,
            type=ContractType(option_type) if option_type else None,
        )
        found = self._call(self._options.get_option_chain, request)
        return [to_option_contract(symbol, snap) for symbol, snap in sorted(found.items())]

    def _option_quotes(self, symbols: list[str], *, timeout: float | None = None) -> dict[str, Quote]:
        found = self._call(self._options.get_option_latest_quote, OptionLatestQuoteRequest(symbol_or_symbols=symbols), timeout=timeout)
        return {symbol: to_quote(symbol, q) for symbol, q in found.items()}
