"""The pre-trade checks of the order pipeline: the account may trade, the order limits, the risk controls
(trading/pretrade.py), the minimum balance. Each returns a refusal or None (docs/architecture.md, "The order
pipeline")."""
from __future__ import annotations

from decimal import Decimal

from accounts import broker as broker_seam
from accounts.broker import AccountBroker, BrokerError
from accounts.models import AlpacaAccount, TypeSource

from . import balance as bal
from .intents import OPTION, OrderIntent
from .pretrade import pretrade_refusal
from .results import Refusal
from .selectors import trading_config


def _account_refusal(account: AlpacaAccount) -> Refusal | None:
    if not account.enabled:
        return Refusal("account_disabled", f"Account {account.account_id} is disabled; orders are refused.")
    if account.config_error:
        return Refusal(
            "account_config_invalid",
            f"Account {account.account_id}'s entry in secrets.yml is invalid; orders are refused until it is valid "
            f"and synced again: {account.config_error}",
            {"reason": account.config_error},
        )
    if account.type_mismatch:
        return Refusal(
            "account_type_mismatch",
            f"Account {account.account_id} is configured as {'paper' if account.paper_trading else 'live'} but detected as "
            f"{account.account_type}; orders are refused until the configuration is corrected.",
            {"configured_paper": account.paper_trading, "account_type": account.account_type},
        )
    if account.type_source == TypeSource.UNKNOWN:
        return Refusal(
            "account_type_undetected",
            f"Account {account.account_id}'s paper/live type has not been detected yet; retry shortly.",
            {"configured_paper": account.paper_trading},
        )
    if account.type_source == TypeSource.FALLBACK and not account.paper_trading:
        # The safe mode (docs/architecture.md, "Accounts") labels a failed detection "paper", but a live-configured account's
        # orders still go to the live endpoint: real-money orders would be recorded as paper. We
        # cannot label them truthfully, so they are refused until a detection succeeds.
        return Refusal(
            "account_type_unverified",
            f"Account {account.account_id} is configured as live but its type could not be verified "
            f"({account.detection_error or 'detection failed'}); orders are refused until detection succeeds.",
            {"configured_paper": False, "type_source": account.type_source},
        )
    return None


def _reference_price(*, account: AlpacaAccount, intent: OrderIntent) -> Decimal | None:
    price = intent.limit_price or intent.stop_price
    if price is not None:
        return price
    md = broker_seam.market_data()
    quotes = (md.option_quotes if intent.asset_class == OPTION else md.stock_quotes)([intent.symbol], account_id=account.account_id)
    quote = quotes.get(intent.symbol)
    if quote is None:
        return None
    return (quote.ask if intent.side == "buy" else quote.bid) or quote.ask or quote.bid


def _limit_refusal(*, account: AlpacaAccount, intent: OrderIntent) -> Refusal | None:
    """The optional ``trading.max_order_qty`` and ``max_order_notional`` caps (400)."""
    cfg = trading_config()
    if cfg.max_order_qty is not None and intent.qty is not None and intent.qty > cfg.max_order_qty:
        return Refusal(
            "order_limit_exceeded", f"qty {intent.qty} exceeds the maximum order quantity {cfg.max_order_qty}.",
            {"max_order_qty": str(cfg.max_order_qty)},
        )
    if cfg.max_order_notional is None:
        return None
    notional = intent.notional
    if notional is None:
        try:
            price = _reference_price(account=account, intent=intent)
        except BrokerError:
            price = None
        if price is None:
            return Refusal(
                "price_unavailable", f"No price for {intent.symbol} to check the maximum order notional; retry shortly.",
            )
        notional = intent.qty * price * intent.multiplier
    if notional > cfg.max_order_notional:
        return Refusal(
            "order_limit_exceeded",
            f"Order notional {bal.dollars(notional)} exceeds the maximum order notional {bal.dollars(cfg.max_order_notional)}.",
            {"max_order_notional": str(cfg.max_order_notional), "notional": f"{notional:.2f}"},
        )
    return None


def _order_refusal(*, account: AlpacaAccount, intent: OrderIntent, broker: AccountBroker) -> Refusal | None:
    """The order limits, then right after them the risk controls (trading state, restricted symbols, rate and
    open-order caps, price collar: trading/pretrade.py). Both run before the balance check."""
    return _limit_refusal(account=account, intent=intent) or pretrade_refusal(account=account, intent=intent, broker=broker)


def _balance_refusal(account: AlpacaAccount, check: bal.BalanceCheck) -> Refusal | None:
    if not check.refused:
        return None
    if check.status == bal.UNVERIFIED:
        return Refusal(
            "balance_unverified",
            f"The cash of account {account.account_id} could not be verified ({check.fetch_error}); "
            "orders are refused while balance_check_fail_closed is on.",
        )
    return Refusal(
        "insufficient_balance",
        bal.insufficient_message(account.account_id, check.cash, check.minimum_balance),
    )


