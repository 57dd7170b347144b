"""The minimum-balance pre-trade check (docs/api.md, "Orders"; settings in docs/configuration.md, "trading").

Pure decision plus the two reads it may need from the broker (a live ``get_account`` when the
snapshot is stale, and the position when a sell might only reduce it). The order service
records and audits the outcome in the same step as the ``OrderRecord``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from accounts.balance_cache import snapshots_remember
from accounts.broker import AccountBroker, BrokerError
from accounts.models import AlpacaAccount, BalanceSnapshot

from .intents import OrderIntent
from .selectors import BalanceSettings, balance_snapshot_newest

logger = logging.getLogger("opitios.trading.balance")

PASSED = "passed"
INSUFFICIENT = "insufficient"
REDUCING_SELL = "reducing_sell"
UNVERIFIED = "unverified"
DISABLED = "disabled"
STATUSES = (PASSED, INSUFFICIENT, REDUCING_SELL, UNVERIFIED, DISABLED)


@dataclass
class BalanceCheck:
    status: str
    minimum_balance: Decimal | None = None
    cash: Decimal | None = None
    source: str | None = None  # snapshot | live
    age_seconds: float | None = None
    fallback: bool | None = None  # True when the cash is an older fallback snapshot
    reducing_sell: bool | None = None
    fetch_error: str | None = None
    refused: bool = False
    extra: dict = field(default_factory=dict)


def dollars(value: Decimal) -> str:
    return f"${value:,.2f}"


def insufficient_message(account_id: str, cash: Decimal, minimum: Decimal) -> str:
    return f"Account {account_id} cash {dollars(cash)} is below the minimum balance {dollars(minimum)}"


def _cash(*, account: AlpacaAccount, broker: AccountBroker, settings: BalanceSettings, now: datetime) -> BalanceCheck:
    """Cash from a fresh snapshot, else live (storing a snapshot), else an older fallback snapshot."""
    check = BalanceCheck(status=PASSED, minimum_balance=settings.minimum_balance)
    if settings.max_age_seconds > 0:
        snap = balance_snapshot_newest(account=account, since=now - timedelta(seconds=settings.max_age_seconds))
        if snap is not None:
            check.cash, check.source = snap.cash, "snapshot"
            check.age_seconds = max(0.0, (now - snap.fetched_at).total_seconds())
            return check
    try:
        info = broker.get_account(timeout=settings.timeout_ms / 1000)
    except BrokerError as exc:
        check.fetch_error = f"{exc.code}: {exc.message}"[:200]
        logger.warning("balance fetch failed account=%s error=%s", account.account_id, exc.code)
    else:
        fetched_at = datetime.now(tz=now.tzinfo)
        snapshots_remember([BalanceSnapshot.objects.create(
            account=account, cash=info.cash, buying_power=info.buying_power, equity=info.equity, fetched_at=fetched_at
        )])
        check.cash, check.source, check.age_seconds = info.cash, "live", 0.0
        return check
    snap = balance_snapshot_newest(account=account, since=now - timedelta(seconds=settings.fallback_max_age_seconds))
    if snap is not None:
        check.cash, check.source, check.fallback = snap.cash, "snapshot", True
        check.age_seconds = max(0.0, (now - snap.fetched_at).total_seconds())
    return check


def reduces_position(*, broker: AccountBroker, intent: OrderIntent, timeout: float | None = None) -> bool:
    """A sell of at most the long position, or a buy of at most a short one, only reduces risk.
    A failed lookup is not reducing. Also the reduce-only rule of the trading states (trading/pretrade.py)."""
    try:
        position = broker.get_position(intent.symbol, timeout=timeout)
    except BrokerError as exc:
        logger.warning("position lookup failed symbol=%s error=%s; not treated as reducing", intent.symbol, exc.code)
        return False
    if position is None or position.qty == 0:
        return False
    long = position.qty > 0
    # Shares already promised to open sells are not there to reduce again: stacked sells could open a short.
    held = abs(position.qty_available) if long else abs(position.qty)
    if (intent.side == "sell") != long:
        return False
    if intent.qty is not None:
        return intent.qty <= held
    if intent.notional is not None and position.market_value is not None:
        return intent.notional <= abs(position.market_value)
    return False


def balance_check(*, account: AlpacaAccount, broker: AccountBroker, intent: OrderIntent, settings: BalanceSettings, now: datetime) -> BalanceCheck:
    if not settings.enabled:
        return BalanceCheck(status=DISABLED, minimum_balance=settings.minimum_balance)
    check = _cash(account=account, broker=broker, settings=settings, now=now)
    if check.cash is None:
        check.status = UNVERIFIED
        # Fail-closed must still never trap an account in a losing position.
        if settings.fail_closed and not settings.block_reducing_sells:
            check.reducing_sell = reduces_position(broker=broker, intent=intent, timeout=settings.timeout_ms / 1000)
        check.refused = settings.fail_closed and not check.reducing_sell
        return check
    if check.cash >= settings.minimum_balance:
        return check
    check.reducing_sell = reduces_position(broker=broker, intent=intent, timeout=settings.timeout_ms / 1000)
    if check.reducing_sell and not settings.block_reducing_sells:
        check.status = REDUCING_SELL
        return check
    check.status = INSUFFICIENT
    check.refused = True
    return check
