"""Tick-driven exits (docs/streaming.md, "Tick-driven exits"): a streamed quote of a managed option symbol
evaluates that symbol's positions with the sweep's pure rules (``strategy.evaluate``), and a rule that fires
places the exit at once, through the sweep's own exit path.

Safety is the sweep's:
- a first evaluation uses only the position row and the tick (no lock, no broker call, no write), so a
  quote that fires nothing costs one query;
- a rule that fires takes the per-account lock (the sweep's), re-reads the row (a position the sweep or
  an earlier tick is already closing is left alone), asks the broker for the clock and the position, and
  evaluates again with the clock before it decides;
- the exit is ``services.exit_place``: its attempt and deterministic client order id are persisted before
  the order is sent, so a tick and a sweep never sell twice.

Nothing is written when no rule fires: the high-water mark stays the sweep's (a tick writing it outside the
lock could race the sweep's own write).

A symbol left with no open position to evaluate (its exits placed, or none open) is marked settled in the
cache (``symbols_settled``), with the time of the look that found it so: the hub stops sending its ticks
until its own re-read of the exit bounds, later than that look, says otherwise (streaming/ticks.py).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.core.cache import cache
from django.utils import timezone

from accounts.broker import BrokerError, Quote, broker_for
from opitios.config import SellModuleConfig

from . import strategy
from .locks import held_lock
from .models import ManagedPosition, PositionStatus
from .selectors import bot_state, sell_config
from .services import ACCOUNT_LOCK_TTL, AccountCheck, clock_for_check, exit_place

logger = logging.getLogger("opitios.sellbot")

MAX_TICK_AGE_SECONDS = 2.0  # a tick older than this when its task runs is not acted on: a newer one follows
SETTLED_KEY = "sellbot:ticks:settled:"
SETTLED_TTL_SECONDS = 60  # longer than the hub's re-read of the bounds (5 s), which supersedes a mark


@dataclass
class TickResult:
    symbol: str
    skipped: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def quote_from_tick(symbol: str, tick: dict) -> Quote:
    """The hub's last-value form (``bid``, ``ask``, sizes, ISO ``timestamp``) as a broker ``Quote``."""
    def dec(value) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    ts = tick.get("timestamp")
    return Quote(symbol, dec(tick.get("bid")), dec(tick.get("ask")), dec(tick.get("bid_size")), dec(tick.get("ask_size")),
                 datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None)


def _view(mp: ManagedPosition) -> strategy.PositionView:
    return strategy.PositionView(mp.symbol, mp.entry_price, mp.opened_at, mp.high_water_mark, mp.last_price)


def _open_positions(symbol: str):
    return ManagedPosition.objects.filter(symbol=symbol, opted_in=True, status=PositionStatus.OPEN, account__enabled=True)


def symbols_settled(symbols: list[str]) -> dict[str, float]:
    """Of ``symbols``, those a tick evaluation last found with no open position to evaluate, and when that
    look was taken (epoch seconds)."""
    found = cache.get_many([SETTLED_KEY + s for s in symbols])
    return {s: float(found[SETTLED_KEY + s]) for s in symbols if SETTLED_KEY + s in found}


def _settle(symbol: str, looked_at: float, result: TickResult) -> None:
    try:
        cache.set(SETTLED_KEY + symbol, looked_at, SETTLED_TTL_SECONDS)
    except Exception as exc:  # noqa: BLE001 - the cache away: the hub keeps sending until its next bounds re-read
        logger.warning("sellbot tick symbol=%s: settled mark not written (%s)", symbol, exc.__class__.__name__)
        return
    result.add("settled")


def tick_evaluate(*, symbol: str, tick: dict, worker: str = "") -> TickResult:
    """Evaluate the open managed positions in ``symbol`` against ``tick`` and place the exits that fire; a
    symbol with no open position left is marked settled (``symbols_settled``)."""
    result = TickResult(symbol)
    age = time.time() - float(tick.get("received_at") or 0)
    if age > MAX_TICK_AGE_SECONDS:
        result.skipped = "stale_tick"
        return result
    if not bot_state().enabled:
        result.skipped = "stopped"
        return result
    config = sell_config()
    quote = quote_from_tick(symbol, tick)
    looked_at = time.time()
    positions = list(_open_positions(symbol).select_related("account"))
    now = timezone.now()
    fired = False
    for mp in positions:
        result.add("evaluated")
        if strategy.evaluate(_view(mp), quote, None, config, now).sell:
            fired = True
            _exit_on_tick(mp, quote, config, worker, result)
    if fired:
        looked_at = time.time()
    if not positions or fired and not _open_positions(symbol).exists():
        _settle(symbol, looked_at, result)
    return result


def _exit_on_tick(mp: ManagedPosition, quote: Quote, config: SellModuleConfig, worker: str, result: TickResult) -> None:
    account = mp.account
    if not account.tradable:
        result.add("account_not_tradable")
        return
    with held_lock(f"account:{account.pk}", ttl=ACCOUNT_LOCK_TTL) as mine:
        if not mine:  # a sweep's check holds the account: it prices from the same stream; the next tick retries
            result.add("locked")
            return
        mp = ManagedPosition.objects.filter(pk=mp.pk, status=PositionStatus.OPEN, opted_in=True).first()
        if mp is None:  # closing or closed since the first look
            result.add("already_exiting")
            return
        check = AccountCheck(account.pk)
        try:
            broker = broker_for(account)
            clock = clock_for_check(broker, check)
            bp = broker.get_position(mp.symbol)
        except BrokerError as exc:
            result.add(f"broker:{exc.code}")
            logger.warning("sellbot tick account=%s symbol=%s: broker error %s; the sweep retries", account.account_id, mp.symbol, exc.code)
            return
        if bp is None or bp.qty <= 0 or bp.side == "short":
            result.add("no_long_position")  # the sweep closes or reports it
            return
        view = strategy.PositionView(mp.symbol, mp.entry_price, mp.opened_at, mp.high_water_mark, bp.current_price)
        decision = strategy.evaluate(view, quote, clock, config, timezone.now())
        if not decision.sell:
            result.add(f"hold:{decision.reason}")
            return
        exit_place(account, mp, bp, quote, config, reason=decision.reason, detail=f"tick: {decision.detail}", decision=decision,
                    worker=worker, result=check)
    for key, n in check.counts.items():
        result.add(key, n)
