"""The sweep's market clock and quotes: the shared snapshot, and an account's own fetch for the rest."""
from __future__ import annotations

import logging
import time

from accounts.broker import BrokerError, Clock, Quote, broker_for, market_data
from accounts.models import AlpacaAccount

from ..market import QUOTE_BATCH, MarketSnapshot
from ..selectors import PRICE_FAILURE_PREFIX, sell_config
from .check_result import AccountCheck, counter_add

logger = logging.getLogger("opitios.sellbot")


CLOCK_CACHE_SECONDS = 5.0


_clock_cache: tuple[float, Clock] | None = None


def _clock(broker, result: AccountCheck) -> Clock | None:
    """The market clock, shared by every account and cached briefly in the process."""
    global _clock_cache
    if _clock_cache and time.monotonic() - _clock_cache[0] < min(CLOCK_CACHE_SECONDS, sell_config().check_interval):
        return _clock_cache[1]
    try:
        clock = broker.get_clock()
    except BrokerError as exc:
        result.add(f"clock_failed:{exc.code}")
        return None
    _clock_cache = (time.monotonic(), clock)
    return clock


def _quotes(account: AlpacaAccount, symbols: list[str], result: AccountCheck, market: MarketSnapshot | None = None) -> dict[str, Quote]:
    """The sweep's quotes for the symbols it covers; one batched call on the account for the rest."""
    covered = market.quotes if market is not None else {}
    quotes = {s: covered[s] for s in symbols if covered.get(s) is not None}
    missing = [s for s in symbols if s not in covered]
    if not missing:
        return quotes
    try:
        return quotes | market_data().option_quotes(missing, account_id=account.account_id)
    except BrokerError as exc:
        counter_add(name=f"{PRICE_FAILURE_PREFIX}{exc.code}")
        result.add("price_fetch_failures")
        logger.warning("sellbot account=%s quote fetch failed (%s); using positions' current prices", account.account_id, exc.code)
        return quotes


def market_snapshot_take(*, symbols, clock_account_pk: int | None) -> tuple[MarketSnapshot, dict[str, int]]:
    """The clock (through ``clock_account_pk``) and the latest quotes of ``symbols``, in batches over
    the market-data routing. What fails is left out: the checks then fetch it themselves."""
    taken_at = time.time()  # before the calls: the snapshot's age is never understated
    failures: dict[str, int] = {}
    clock = None
    account = AlpacaAccount.objects.filter(pk=clock_account_pk, enabled=True).first() if clock_account_pk else None
    if account is not None:
        try:
            clock = broker_for(account).get_clock()
        except BrokerError as exc:
            failures[f"clock_failed:{exc.code}"] = 1
    quotes: dict[str, Quote | None] = {}
    ordered = sorted(set(symbols))
    for i in range(0, len(ordered), QUOTE_BATCH):
        batch = ordered[i : i + QUOTE_BATCH]
        try:
            found = market_data().option_quotes(batch)
        except BrokerError as exc:  # stop at the first failure: the sweep must not sit out a timeout per batch
            failures[f"quotes_failed:{exc.code}"] = 1
            logger.warning("sellbot sweep quotes failed (%s); the checks fetch their own", exc.code)
            break
        quotes.update({s: found.get(s) for s in batch})
    return MarketSnapshot(taken_at, clock, quotes), failures
