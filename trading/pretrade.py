"""The risk controls of the pre-trade checks (docs/risk.md): the trading state (kill switch,
reduce-only), restricted symbols, the order-rate cap, the open-order cap and the price collar.

``pretrade_refusal`` runs in the order pipeline after the order limits and before the balance
check, so a refusal is recorded, audited and logged like every other. Broker reads it needs (the
position, the open orders, a REST quote) are made only when a rule needs them, each within
``trading.balance_check_timeout_ms``. The collar and the open-order cap fail open with a warning
when their read fails; a reduce-only decision fails closed (an order not known to reduce is refused).
Each refusal is the pipeline's ``Refusal`` (code, message, details); its HTTP status is in trading/errors.py.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from accounts import broker as broker_seam
from accounts import budget
from accounts.broker import AccountBroker, BrokerError, Quote
from accounts.models import AlpacaAccount
from opitios.config import current_config
from risk.models import State
from risk.states import trading_state_effective

from . import quote_source
from .balance import reduces_position
from .intents import OPTION, OrderIntent
from .results import Refusal

logger = logging.getLogger("opitios.trading.risk")


def order_rate_prefix(account_pk: int) -> str:
    """The counter of an account's orders per second (``trading.max_orders_per_second``); the order
    routes' throttle counts it in its own round trip (trading/throttles.py)."""
    return f"risk:ops:{account_pk}"


@dataclass(frozen=True)
class RiskSettings:
    price_collar_pct: Decimal | None
    restricted_symbols: frozenset[str]
    max_open_orders: int | None
    max_orders_per_second: int | None
    timeout_s: float


def risk_settings(account: AlpacaAccount) -> RiskSettings:
    """The trading section's values, each overridden by the account's entry in secrets.yml when set."""
    config = current_config()
    cfg = config.trading
    own = config.accounts.get(account.account_id)

    def pick(name):
        value = getattr(own, name, None) if own is not None else None
        return getattr(cfg, name) if value is None else value

    return RiskSettings(
        price_collar_pct=pick("price_collar_pct"),
        restricted_symbols=frozenset(cfg.restricted_symbols),
        max_open_orders=pick("max_open_orders"),
        max_orders_per_second=pick("max_orders_per_second"),
        timeout_s=cfg.balance_check_timeout_ms / 1000,
    )


class _Reduces:
    """Whether the order only reduces a position: one position read, made on first need."""

    def __init__(self, broker: AccountBroker, intent: OrderIntent, timeout: float) -> None:
        self._fetch: Callable[[], bool] = lambda: reduces_position(broker=broker, intent=intent, timeout=timeout)
        self._value: bool | None = None

    def __call__(self) -> bool:
        if self._value is None:
            self._value = self._fetch()
        return self._value


def _underlying(intent: OrderIntent) -> str:
    """An OCC option symbol's root (``AAPL240119C00190000`` -> ``AAPL``); a stock's own symbol."""
    if intent.asset_class != OPTION:
        return intent.symbol
    return intent.symbol[:-15] if len(intent.symbol) > 15 else intent.symbol


def pretrade_refusal(*, account: AlpacaAccount, intent: OrderIntent, broker: AccountBroker) -> Refusal | None:
    """The first risk control that refuses the order, or None."""
    cfg = risk_settings(account)
    reduces = _Reduces(broker, intent, cfg.timeout_s)
    return (_state_refusal(account, intent, reduces) or _restricted_refusal(cfg, intent, reduces)
            or _rate_refusal(cfg, account) or _open_orders_refusal(cfg, account, intent, broker, reduces)
            or _collar_refusal(cfg, account, intent))


def _state_refusal(account: AlpacaAccount, intent: OrderIntent, reduces: _Reduces) -> Refusal | None:
    state = trading_state_effective(account=account)
    if state.active:
        return None
    where = "globally" if state.scope == "global" else f"on account {account.account_id}"
    details = {"trading_state": {"state": state.state, "scope": state.scope, "reason": state.reason}}
    if state.state == State.HALTED:
        return Refusal("trading_halted", f"Trading is halted {where}: {state.reason}. Only cancels are accepted.", details)
    if not reduces():
        return Refusal(
            "reduce_only",
            f"Trading is reduce-only {where}: {state.reason}. Only an order that reduces an existing position "
            f"(a sell of at most the long quantity, a buy of at most the short quantity) is accepted.",
            details,
        )
    return None


def _restricted_refusal(cfg: RiskSettings, intent: OrderIntent, reduces: _Reduces) -> Refusal | None:
    symbol = _underlying(intent)
    if symbol not in cfg.restricted_symbols and intent.symbol not in cfg.restricted_symbols:
        return None
    if reduces():
        return None
    return Refusal("symbol_restricted", f"{intent.symbol} is a restricted symbol: only orders that reduce a position are accepted.",
                   {"symbol": intent.symbol})


def _rate_refusal(cfg: RiskSettings, account: AlpacaAccount) -> Refusal | None:
    limit = cfg.max_orders_per_second
    if limit is None:
        return None
    # Shared by every process (Redis, or the embedded counter table); a store outage counts per process.
    # On the order routes the throttle already counted it in its round trip (trading/throttles.py).
    taken = budget.window_take_precounted(order_rate_prefix(account.pk), limit, window=1)
    if taken.allowed:
        return None
    return Refusal("order_rate_exceeded", f"Account {account.account_id} is limited to {limit} orders per second; retry shortly.",
                   {"max_orders_per_second": limit, "retry_after_seconds": taken.retry_after})


def _open_orders_refusal(cfg: RiskSettings, account: AlpacaAccount, intent: OrderIntent, broker: AccountBroker,
                         reduces: _Reduces) -> Refusal | None:
    cap = cfg.max_open_orders
    if cap is None:
        return None
    try:
        count = len(broker.list_orders(status="open", limit=cap, timeout=cfg.timeout_s))
    except BrokerError as exc:
        logger.warning("open-order cap unverified account=%s error=%s: allowed", account.account_id, exc.code)
        return None
    if count < cap or reduces():  # closing a position is never blocked by the cap
        return None
    return Refusal("open_order_limit", f"Account {account.account_id} has {count} open orders, the maximum ({cap}); "
                   "cancel some first.", {"max_open_orders": cap, "open_orders": count})


def _reference(account: AlpacaAccount, intent: OrderIntent, timeout: float) -> tuple[Decimal | None, str]:
    streamed = quote_source.streamed_quotes([intent.symbol]).get(intent.symbol)
    quote: Quote | None = streamed[0] if streamed else None
    source = "stream"
    if quote is None:
        source = "rest"
        md = broker_seam.market_data()
        fetch = md.option_quotes if intent.asset_class == OPTION else md.stock_quotes
        try:
            quote = fetch([intent.symbol], account_id=account.account_id, timeout=timeout).get(intent.symbol)
        except BrokerError as exc:
            logger.warning("price collar reference unavailable account=%s symbol=%s error=%s", account.account_id,
                           intent.symbol, exc.code)
            return None, source
    if quote is None:
        return None, source
    # The side the order would trade against: a buy's ask, a sell's bid (else the other one).
    price = (quote.ask if intent.side == "buy" else quote.bid) or quote.ask or quote.bid
    return (price if price and price > 0 else None), source


def _collar_refusal(cfg: RiskSettings, account: AlpacaAccount, intent: OrderIntent) -> Refusal | None:
    pct = cfg.price_collar_pct
    prices = [(name, p) for name, p in (("limit_price", intent.limit_price), ("stop_price", intent.stop_price)) if p is not None]
    if pct is None or not prices:
        return None
    reference, source = _reference(account, intent, cfg.timeout_s)
    if reference is None:
        logger.warning("price collar not applied account=%s symbol=%s: no reference price (fails open)", account.account_id,
                       intent.symbol)
        return None
    for name, price in prices:
        away = abs(price - reference) / reference * 100
        if away > pct:
            return Refusal(
                "price_collar",
                f"{name} {price} is {away:.2f}% away from the reference price {reference} of {intent.symbol} ({source}), "
                f"beyond the {pct}% collar.",
                {"price_collar_pct": str(pct), "reference_price": str(reference), "reference_source": source, "field": name},
            )
    return None
