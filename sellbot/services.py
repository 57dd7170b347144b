"""The sell bot's writes (SPEC §6): control, sweeps, per-account checks, exits and cancellations.

Safety rules this module keeps:
- An exit order's ``client_order_id`` is ``sb-{position_pk}-{attempt}``, and the attempt is persisted
  (with its SellDecision) *before* the order is submitted. A task that dies and runs again finds the
  same id: it asks the broker for it and resubmits the same id only when the broker has never seen it,
  so a position is never sold twice.
- Everything for one account runs under a per-account lock (``locks.held_lock``).
- Positions not opted in are never evaluated, priced or sold.
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connections, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.broker import (
    BrokerError,
    BrokerNotFound,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    Clock,
    Position,
    Quote,
    UpstreamRateLimited,
    broker_for,
    market_data,
)
from accounts.models import AlpacaAccount
from audit.services import audit_record
from opitios.config import SellModuleConfig
from opitios.db import update_by_pk
from opitios.errors import ApplicationError

from . import strategy
from .locks import held_lock
from .market import MarketSnapshot, max_age
from .marks import option_quotes
from .models import (
    AutoSellFill,
    BotStatus,
    CancelOutcome,
    ManagedPosition,
    PositionOrigin,
    PositionStatus,
    SellBotState,
    SellCancellation,
    SellCounter,
    SellDecision,
)
from .selectors import (
    HOLD_PREFIX,
    LIVE_CANCEL_OUTCOMES,
    PRICE_FAILURE_PREFIX,
    STATE_PK,
    account_auto_sell_buys,
    bot_health,
    bot_state,
    sell_config,
)

logger = logging.getLogger("opitios.sellbot")

TRANSIENT_ERRORS = (BrokerTimeout, BrokerUnavailable, UpstreamRateLimited)
BOT_ORDER_PREFIX = "sb-"
EXIT_CANCELLED_STATUSES = frozenset({"canceled", "expired"})
WORKING_STATUSES = frozenset(
    {"new", "accepted", "pending_new", "partially_filled", "accepted_for_bidding", "pending_cancel", "pending_replace", "held",
     "calculated", "stopped", "suspended"}
)
FINAL_STATUSES = frozenset({"filled", "canceled", "expired", "rejected", "done_for_day", "replaced"})
ACCOUNT_LOCK_TTL = 60.0  # longer than check_account's hard time limit
CLOCK_CACHE_SECONDS = 5.0


def exit_client_order_id(position_pk: int, attempt: int) -> str:
    return f"{BOT_ORDER_PREFIX}{position_pk}-{attempt}"


# --- control ------------------------------------------------------------------------------


def bot_control(*, action: str, actor_id: str) -> SellBotState:
    """start | stop | restart. The state is in the database, so every worker obeys the next time it looks."""
    if action not in ("start", "stop", "restart"):
        raise ValueError(f"unknown action {action!r}")
    now = timezone.now()
    with transaction.atomic():
        state = bot_state()
        state = SellBotState.objects.select_for_update().get(pk=state.pk)
        was_enabled = state.enabled
        if action in ("stop", "restart"):
            state.enabled, state.status = False, BotStatus.STOPPED
            audit_record(actor_type="admin", actor_id=actor_id, action="sellbot.stopped", obj=state,
                         data={"action": action, "was_enabled": was_enabled})
        if action in ("start", "restart"):
            state.enabled, state.status, state.stalled_at = True, BotStatus.RUNNING, None
            audit_record(actor_type="admin", actor_id=actor_id, action="sellbot.started", obj=state,
                         data={"action": action, "was_enabled": was_enabled})
        state.changed_at, state.changed_by = now, actor_id
        state.save(update_fields=["enabled", "status", "stalled_at", "changed_at", "changed_by"])
        if state.enabled:
            transaction.on_commit(_dispatch_sweep)
    logger.info("sellbot %s by %s: enabled=%s", action, actor_id, state.enabled)
    return state


def _dispatch_sweep() -> None:
    from .tasks import sweep

    sweep.apply_async(expires=max(sell_config().check_interval, 1.0))


# --- sweeps ---------------------------------------------------------------------------------


def sweep_begin(*, sweep_id: str, worker: str) -> SellBotState | None:
    """Mark a sweep started; None when the bot is stopped (then nothing runs)."""
    state = bot_state()
    if not state.enabled:
        return None
    now = timezone.now()
    SellBotState.objects.filter(pk=STATE_PK).update(heartbeat_at=now, last_sweep_started_at=now, last_sweep_id=sweep_id, worker=worker)
    return state


def sweep_finish(*, sweep_id: str, started_at: datetime, counts: dict) -> None:
    now = timezone.now()
    SellBotState.objects.filter(pk=STATE_PK).update(
        heartbeat_at=now, last_sweep_finished_at=now, last_sweep_duration_ms=round((now - started_at).total_seconds() * 1000, 3),
        last_sweep_counts=counts,
    )
    # A finished sweep ends a stall; only the running bot flips back.
    SellBotState.objects.filter(pk=STATE_PK, enabled=True, status=BotStatus.STALLED).update(status=BotStatus.RUNNING, stalled_at=None)


def worker_started(*, now: datetime | None = None) -> None:
    """A Celery worker started: the watchdog's grace window starts again (an ordinary restart is no stall)."""
    bot_state()
    SellBotState.objects.filter(pk=STATE_PK).update(worker_started_at=now or timezone.now())


def bot_watchdog(*, worker: str) -> bool:
    """True when the bot is enabled and stalled; the first detection is logged and audited."""
    state = bot_state()
    status, _, why = bot_health(state=state)
    if status != BotStatus.STALLED:
        return False
    now = timezone.now()
    with transaction.atomic():
        first = SellBotState.objects.filter(pk=STATE_PK, enabled=True).exclude(status=BotStatus.STALLED).update(
            status=BotStatus.STALLED, stalled_at=now
        )
        if first:
            logger.error("sellbot stalled: %s; last sweep finished %s; re-dispatching", why, state.last_sweep_finished_at)
            audit_record(actor_type="system", actor_id=worker, action="sellbot.stalled", obj=state,
                         data={"reason": why, "last_sweep_finished_at": _iso(state.last_sweep_finished_at)})
    return True


# --- one account ----------------------------------------------------------------------------


@dataclass
class AccountCheck:
    account_pk: int
    skipped: str = ""
    cancellations: list[int] = field(default_factory=list)  # SellCancellation pks to dispatch
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def account_check(*, account_pk: int, worker: str = "", market: MarketSnapshot | None = None) -> AccountCheck:
    """Cancel stale orders, then evaluate the managed positions, then act (SPEC §6 "A sweep").
    ``market`` is the sweep's clock and quotes (``sellbot.market``), used while fresh."""
    result = AccountCheck(account_pk)
    if not bot_state().enabled:
        result.skipped = "stopped"
        return result
    account = AlpacaAccount.objects.filter(pk=account_pk, enabled=True).first()
    if account is None:
        result.skipped = "account_disabled"
        return result
    if not account.tradable:  # mismatched, or its paper/live type is unknown or unverified: orders are refused
        result.skipped = "account_not_tradable"
        logger.warning("sellbot account=%s skipped: not tradable (mismatch=%s type_source=%s)", account.account_id,
                       account.type_mismatch, account.type_source)
        return result
    with held_lock(f"account:{account_pk}", ttl=ACCOUNT_LOCK_TTL) as mine:
        if not mine:
            result.skipped = "locked"
            return result
        config = sell_config()
        if market is not None and not market.fresh(max_age(config.check_interval)):
            market = None
            result.add("market_snapshot_stale")
        try:
            _check_locked(account, config, result, worker, market)
        except BrokerError as exc:
            result.skipped = f"broker:{exc.code}"
            logger.warning("sellbot account=%s check stopped on broker error %s: %s", account.account_id, exc.code, exc.message)
    return result


def _check_locked(account: AlpacaAccount, config: SellModuleConfig, result: AccountCheck, worker: str, market: MarketSnapshot | None) -> None:
    broker = broker_for(account)
    now = timezone.now()
    open_orders = broker.list_orders(status="open", limit=500)
    result.cancellations = stale_orders_flag(account=account, orders=open_orders, config=config, now=now)
    result.add("stale_orders", len(result.cancellations))
    fills_absorb(account=account, broker=broker, result=result)
    broker_positions = {p.symbol: p for p in broker.get_positions()}
    if config.manage_all_option_positions:
        _adopt_positions(account, broker_positions, now, result)
    managed = list(ManagedPosition.objects.filter(account=account, opted_in=True).exclude(status=PositionStatus.CLOSED))
    if not managed:
        return
    open_by_client_id = {o.client_order_id: o for o in open_orders}
    clock = market.clock if market is not None and market.clock is not None else _clock(broker, result)
    market_open = clock is None or clock.is_open
    to_price: list[ManagedPosition] = []
    for mp in managed:
        bp = broker_positions.get(mp.symbol)
        if bp is not None and (bp.side == "short" or bp.qty < 0):
            result.add("short_positions")
            logger.warning("sellbot account=%s symbol=%s short option position qty=%s: reported, not traded", account.account_id, mp.symbol, bp.qty)
            continue
        if mp.status == PositionStatus.CLOSING:
            _continue_exit(account, mp, bp, open_by_client_id, broker, config, market_open, result, worker, market)
        elif bp is None or bp.qty == 0:
            _position_close(mp, reason="position_gone", now=now)
            result.add("closed")
        else:
            to_price.append(mp)
    if not to_price:
        return
    quotes = _quotes(account, [mp.symbol for mp in to_price], result, market)
    changed = []
    holds: dict[str, int] = {}
    for mp in to_price:
        bp = broker_positions[mp.symbol]
        view = strategy.PositionView(mp.symbol, mp.entry_price, mp.opened_at, mp.high_water_mark, bp.current_price)
        quote = quotes.get(mp.symbol)
        decision = strategy.evaluate(view, quote, clock, config, timezone.now())
        result.add("evaluated")
        if decision.high_water_mark is not None and decision.high_water_mark > mp.high_water_mark:
            mp.high_water_mark = decision.high_water_mark
            mp.last_price, mp.last_evaluated_at = decision.mark_price, now
            changed.append(mp)
        if decision.sell:
            _exit_place(account, mp, bp, quote, config, reason=decision.reason, detail=decision.detail, decision=decision, worker=worker, result=result)
        else:
            holds[decision.reason] = holds.get(decision.reason, 0) + 1
    if changed:
        _marks_save(changed)
    # Why nothing sold (a closed market, no price, no rule met): counted by reason for /sell and the admin.
    for reason, n in holds.items():
        result.add(f"{HOLD_PREFIX}{reason}", n)
        counter_add(name=f"{HOLD_PREFIX}{reason}", n=n)


_MARK_FIELDS = ("high_water_mark", "last_price", "last_evaluated_at")


def _marks_save(positions: list[ManagedPosition]) -> None:
    """The evaluated marks, one UPDATE per row sent as one batch (psycopg pipelines executemany).
    Django's bulk_update builds a CASE expression per field: 2.9 ms of CPU for 5 rows against 0.8."""
    statements = [update_by_pk(mp, _MARK_FIELDS) for mp in positions]
    connection = connections[ManagedPosition.objects.db]
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.executemany(statements[0][0], [params for _, params in statements])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


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

    def fetch(batch: list[str]) -> dict[str, Quote | None]:
        if any(k.startswith("quotes_failed:") for k in failures):
            return {}  # stop at the first failure: the sweep must not sit out a timeout per batch
        try:
            found = market_data().option_quotes(batch)
        except BrokerError as exc:
            failures[f"quotes_failed:{exc.code}"] = 1
            logger.warning("sellbot sweep quotes failed (%s); the checks fetch their own", exc.code)
            return {}
        return {s: found.get(s) for s in batch}

    # Streamed symbols with a fresh value come from the hub's last-value cache (sellbot/marks.py).
    return MarketSnapshot(taken_at, clock, option_quotes(sorted(set(symbols)), fetch)), failures


def counter_add(*, name: str, n: int = 1) -> None:
    if not SellCounter.objects.filter(name=name).update(value=F("value") + n):
        SellCounter.objects.get_or_create(name=name)
        SellCounter.objects.filter(name=name).update(value=F("value") + n)


# --- positions --------------------------------------------------------------------------------


def fills_absorb(*, account: AlpacaAccount, broker, result: AccountCheck) -> None:
    """Create or extend a ManagedPosition for each opting-in option buy that (further) filled."""
    for record in account_auto_sell_buys(account_pk=account.pk):
        try:
            order = broker.get_order(record.broker_order_id)
        except BrokerNotFound:
            AutoSellFill.objects.update_or_create(
                account=account, client_order_id=record.client_order_id,
                defaults={"symbol": record.symbol, "broker_order_id": record.broker_order_id, "final": True, "broker_status": "not_found"},
            )
            continue
        except BrokerError as exc:
            result.add(f"fill_check_failed:{exc.code}")
            continue
        with transaction.atomic():
            fill, _ = AutoSellFill.objects.select_for_update().get_or_create(
                account=account, client_order_id=record.client_order_id,
                defaults={"symbol": order.symbol, "broker_order_id": order.id},
            )
            delta = (order.filled_qty or Decimal(0)) - fill.filled_qty
            if delta > 0 and order.filled_avg_price:
                fill.position = position_extend(account=account, symbol=order.symbol, qty=delta, price=order.filled_avg_price,
                                                opened_at=order.filled_at or timezone.now(), client_order_id=record.client_order_id)
                result.add("fills_absorbed")
            fill.filled_qty, fill.filled_avg_price = order.filled_qty or Decimal(0), order.filled_avg_price
            fill.broker_status, fill.final = order.status, order.status in FINAL_STATUSES
            fill.save()


def position_extend(*, account: AlpacaAccount, symbol: str, qty: Decimal, price: Decimal, opened_at: datetime,
                    client_order_id: str = "", origin: str = PositionOrigin.AUTO_SELL_ORDER) -> ManagedPosition:
    """Open a managed position, or add to the live one at the weighted average entry price."""
    mp = ManagedPosition.objects.select_for_update().filter(account=account, symbol=symbol).exclude(status=PositionStatus.CLOSED).first()
    if mp is None:
        return ManagedPosition.objects.create(
            account=account, symbol=symbol, qty=qty, entry_price=price, opened_at=opened_at, high_water_mark=price,
            origin=origin, source_orders=[client_order_id] if client_order_id else [],
        )
    total = mp.qty + qty
    mp.entry_price = ((mp.entry_price * mp.qty + price * qty) / total).quantize(Decimal("0.000001"))
    mp.qty = total
    if client_order_id and client_order_id not in mp.source_orders:
        mp.source_orders = [*mp.source_orders, client_order_id]
    mp.save(update_fields=["entry_price", "qty", "source_orders", "updated_at"])
    return mp


def _adopt_positions(account: AlpacaAccount, positions: dict[str, Position], now: datetime, result: AccountCheck) -> None:
    """``manage_all_option_positions``: long option positions with no row yet are managed from now on.
    A row the admin opted out keeps them untouched."""
    known = set(ManagedPosition.objects.filter(account=account).exclude(status=PositionStatus.CLOSED).values_list("symbol", flat=True))
    for bp in positions.values():
        if bp.asset_class != "us_option" or bp.symbol in known or bp.side == "short" or bp.qty <= 0:
            continue
        with transaction.atomic():
            position_extend(account=account, symbol=bp.symbol, qty=bp.qty, price=bp.avg_entry_price, opened_at=now, origin=PositionOrigin.MANAGE_ALL)
        result.add("adopted")


def _position_close(mp: ManagedPosition, *, reason: str, now: datetime) -> None:
    mp.status, mp.closed_at = PositionStatus.CLOSED, now
    if not mp.exit_reason:
        mp.exit_reason = reason
    mp.save(update_fields=["status", "closed_at", "exit_reason", "updated_at"])


def position_set_opt_in(*, position: ManagedPosition, opted_in: bool, actor_id: str) -> ManagedPosition:
    with transaction.atomic():
        before = position.opted_in
        position.opted_in = opted_in
        position.save(update_fields=["opted_in", "updated_at"])
        audit_record(actor_type="admin", actor_id=actor_id, action="config.changed", account=position.account, obj=position,
                     data={"field": "opted_in", "old": before, "new": opted_in, "symbol": position.symbol})
    return position


# --- exits --------------------------------------------------------------------------------------


def _continue_exit(account, mp: ManagedPosition, bp: Position | None, open_by_client_id: dict, broker, config: SellModuleConfig,
                   market_open: bool, result: AccountCheck, worker: str, market: MarketSnapshot | None) -> None:
    """A position with an exit order: leave a working order alone, close a filled one, re-place a dead one."""
    coid = mp.exit_client_order_id
    order = open_by_client_id.get(coid)
    if order is None:
        try:
            order = broker.get_order_by_client_id(coid)
        except BrokerNotFound:
            order = None
        except BrokerError as exc:
            result.add(f"exit_lookup_failed:{exc.code}")
            return
    if order is not None and order.status in WORKING_STATUSES:
        result.add("exits_working")
        return
    now = timezone.now()
    if bp is None or bp.qty == 0:
        _position_close(mp, reason=mp.exit_reason or "sold", now=now)
        result.add("closed")
        return
    if not market_open:
        return
    decision_row = SellDecision.objects.filter(client_order_id=coid).first()
    if order is None and decision_row is not None and decision_row.outcome == "pending":
        # Persisted but never answered (the task died): resubmit the same id; the broker has not seen it.
        _submit_exit(account, decision_row, worker, result)
        return
    if order is not None and order.status in EXIT_CANCELLED_STATUSES:
        # The exit reached the market and did not fill: one step towards the emergency market order.
        # A refusal by the gateway or a broker fault (no order) is retried at the same shape: it says
        # nothing about the price, and must not turn into a market sell that was never tried.
        ManagedPosition.objects.filter(pk=mp.pk).update(exit_cancellations=F("exit_cancellations") + 1)
        mp.refresh_from_db()
    quote = _quotes(account, [mp.symbol], result, market).get(mp.symbol)
    emergency = mp.exit_cancellations >= config.max_exit_attempts
    detail = f"re-place after {mp.exit_cancellations} unfilled exit(s)" + ("; emergency exit" if emergency else "")
    _exit_place(account, mp, bp, quote, config, reason=mp.exit_reason or "replace", detail=detail, decision=None, worker=worker, result=result)


def exit_order_shape(*, quote: Quote | None, config: SellModuleConfig, emergency: bool) -> tuple[str, Decimal | None]:
    """(type, limit_price): a limit at the bid, or market if configured or after max_exit_attempts; with
    no bid, a limit at the minimum tick (a market sell of an option without a bid is rejected)."""
    bid = quote.bid if quote and quote.bid and quote.bid > 0 else None
    if bid is None:
        return "limit", strategy.MIN_TICK
    if emergency or config.sell_order_type == "market":
        return "market", None
    return "limit", bid


def _exit_place(account, mp: ManagedPosition, bp: Position, quote: Quote | None, config: SellModuleConfig, *, reason: str, detail: str,
                decision: strategy.Decision | None, worker: str, result: AccountCheck) -> None:
    qty = bp.qty_available
    if qty <= 0:
        result.add("no_qty_available")
        return
    emergency = mp.exit_cancellations >= config.max_exit_attempts
    order_type, limit_price = exit_order_shape(quote=quote, config=config, emergency=emergency)
    price = decision.exit_price if decision else strategy.exit_price(quote, bp.current_price)
    pl_pct = decision.pl_pct if decision else (((price / mp.entry_price) - 1) * 100).quantize(Decimal("0.01")) if price and mp.entry_price else None
    with transaction.atomic():
        locked = ManagedPosition.objects.select_for_update().get(pk=mp.pk)
        attempt = locked.exit_attempts + 1
        coid = exit_client_order_id(mp.pk, attempt)
        row = SellDecision.objects.create(
            position=mp, account=account, symbol=mp.symbol, reason=reason, detail=detail[:300], price=price, entry_price=mp.entry_price,
            pl_pct=pl_pct, qty=qty, attempt=attempt, order_type=order_type, limit_price=limit_price, client_order_id=coid,
            decided_at=timezone.now(),
        )
        ManagedPosition.objects.filter(pk=mp.pk).update(
            status=PositionStatus.CLOSING, exit_attempts=attempt, exit_client_order_id=coid, exit_reason=locked.exit_reason or reason,
            last_price=price, last_evaluated_at=timezone.now(),
        )
        audit_record(
            actor_type="sellbot", actor_id=worker or "sellbot", action="sell.decision", account=account, obj=row,
            data={"symbol": mp.symbol, "reason": reason, "detail": detail, "price": _str(price), "entry_price": _str(mp.entry_price),
                  "pl_pct": _str(pl_pct), "qty": _str(qty), "attempt": attempt, "order_type": order_type,
                  "limit_price": _str(limit_price), "client_order_id": coid, "emergency": emergency},
        )
    result.add("decisions")
    _submit_exit(account, row, worker, result)


def _str(value) -> str | None:
    return None if value is None else str(value)


def _submit_exit(account: AlpacaAccount, row: SellDecision, worker: str, result: AccountCheck) -> None:
    """Send the decided order through the normal order flow (SPEC §5, source=sellbot)."""
    from trading.intents import OPTION, OrderIntent
    from trading.services import order_place

    intent = OrderIntent(
        symbol=row.symbol, side="sell", type=row.order_type, time_in_force="day", asset_class=OPTION, qty=row.qty,
        limit_price=row.limit_price, client_order_id=row.client_order_id,
    )
    try:
        placed = order_place(account=account, intent=intent, source="sellbot", user_id=worker or "sellbot")
    except ApplicationError as exc:
        if exc.status_code == 409:  # the same id is in flight elsewhere: the next sweep asks again
            result.add("orders_in_flight")
            return
        outcome, broker_id, error = "refused", "", f"{exc.code}: {exc.message}"
    else:
        record = placed.record
        if placed.ok:
            outcome = "replayed" if placed.body.get("replayed") else "placed"
            broker_id, error = (record.broker_order_id if record else "") or str(placed.body.get("id") or ""), ""
        else:
            err = placed.body.get("error", {})
            outcome = record.outcome if record is not None and record.outcome in ("refused", "rejected", "failed") else "failed"
            broker_id, error = "", f"{err.get('code')}: {err.get('message')}"
    SellDecision.objects.filter(pk=row.pk).update(outcome=outcome, broker_order_id=broker_id, error=error[:500])
    result.add(f"orders_{'ok' if outcome in ('placed', 'replayed') else 'failed'}")
    log = logger.info if outcome in ("placed", "replayed") else logger.error
    log("sellbot exit account=%s symbol=%s reason=%s attempt=%s type=%s limit=%s qty=%s client_order_id=%s outcome=%s %s",
        account.account_id, row.symbol, row.reason, row.attempt, row.order_type, row.limit_price, row.qty, row.client_order_id, outcome, error)


# --- stale-order cancellation ------------------------------------------------------------------


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


def _redispatch_grace(config: SellModuleConfig) -> timedelta:
    return timedelta(seconds=max(10.0, 3 * config.check_interval))


def stale_orders_flag(*, account: AlpacaAccount, orders: list, config: SellModuleConfig, now: datetime) -> list[int]:
    """Record a SellCancellation for each open in-scope order at or past its limit (partially filled
    included); return the ones to dispatch now: new ones, failed ones of still-open orders, and any
    whose task went missing."""
    to_dispatch = []
    for order in orders:
        if order.status == "pending_cancel" or not order_in_scope(order, config.cancel_scope):
            continue
        age = order_age_seconds(order, now)
        limit_minutes = config.cancel_minutes_for(order.type)
        if age is None or age < limit_minutes * 60:
            continue
        row, created = SellCancellation.objects.get_or_create(
            order_id=order.id,
            defaults={
                "client_order_id": order.client_order_id, "account": account, "symbol": order.symbol, "order_type": order.type,
                "side": order.side, "order_status": order.status, "filled_qty": order.filled_qty or 0,
                "submitted_at": order.submitted_at or order.created_at, "age_seconds": age, "limit_minutes": limit_minutes,
                "reason": f"stale: age {age:.1f}s >= {limit_minutes * 60:g}s for {order.type}",
            },
        )
        if created:
            to_dispatch.append(row.pk)
        elif row.outcome == CancelOutcome.FAILED:
            SellCancellation.objects.filter(pk=row.pk).update(outcome=CancelOutcome.PENDING, age_seconds=age, next_attempt_at=None)
            to_dispatch.append(row.pk)
    return to_dispatch + _lost_cancellations(account=account, config=config, now=now, excluding=to_dispatch)


def _lost_cancellations(*, account: AlpacaAccount, config: SellModuleConfig, now: datetime, excluding: list[int]) -> list[int]:
    """Unfinished cancellations whose task went missing (a killed worker): nothing happened to them for
    longer than the re-dispatch grace. Whether their order is still open or has filled or been cancelled
    since, the attempt is idempotent and ends them; left alone they would stay pending for ever and keep
    the account in every sweep."""
    due = Coalesce("next_attempt_at", "last_attempt_at", "created_at")
    return list(
        SellCancellation.objects.filter(account=account, outcome__in=LIVE_CANCEL_OUTCOMES).exclude(pk__in=excluding)
        .annotate(due=due).filter(due__lt=now - _redispatch_grace(config)).values_list("pk", flat=True)
    )


def retry_delay(*, retries: int, base: float, cap: float = 60.0) -> float:
    """Exponential backoff with jitter kept in the upper half of each step, base x 2^n x U(0.5, 1],
    both ends capped: successive delays never shrink (also at the cap) while retries from many tasks
    still spread out."""
    low, high = min(cap, base * 2 ** (retries - 1)), min(cap, base * 2**retries)
    return round(random.uniform(low, high), 3)


@dataclass
class CancelAttempt:
    outcome: str
    retry: bool = False
    error: BrokerError | None = None


def cancellation_attempt(*, cancellation_pk: int, retries: int, max_retries: int, next_delay: float | None, worker: str) -> CancelAttempt:
    """One cancel call. Transient broker errors return ``retry=True`` while retries remain; every
    attempt is recorded on the row and audited as ``sell.cancelled``."""
    row = SellCancellation.objects.select_related("account").get(pk=cancellation_pk)
    if row.outcome not in LIVE_CANCEL_OUTCOMES:
        return CancelAttempt(row.outcome)  # a duplicate message of a finished cancellation
    started_at = timezone.now()
    t0 = time.perf_counter()
    error: BrokerError | None = None
    try:
        broker_for(row.account).cancel_order(row.order_id)
        outcome = CancelOutcome.CANCELED
    except (BrokerRejected, BrokerNotFound) as exc:
        outcome, error = CancelOutcome.ALREADY_FINAL, exc
    except TRANSIENT_ERRORS as exc:
        outcome, error = (CancelOutcome.RETRYING if retries < max_retries else CancelOutcome.FAILED), exc
    except BrokerError as exc:
        outcome, error = CancelOutcome.FAILED, exc
    broker_ms = round((time.perf_counter() - t0) * 1000, 3)
    now = timezone.now()
    final = outcome not in LIVE_CANCEL_OUTCOMES
    updates = {
        "attempts": F("attempts") + 1, "outcome": outcome, "last_attempt_at": started_at, "last_broker_ms": broker_ms,
        "error": f"{error.code}: {error.message}"[:500] if error else "",
        "next_attempt_at": now + timedelta(seconds=next_delay) if outcome == CancelOutcome.RETRYING and next_delay else None,
    }
    if final:
        updates |= {"finished_at": now, "total_ms": round((now - row.created_at).total_seconds() * 1000, 3)}
    with transaction.atomic():
        # Only a live row moves: a concurrent duplicate that already finished it wins.
        changed = SellCancellation.objects.filter(pk=row.pk, outcome__in=LIVE_CANCEL_OUTCOMES).update(**updates)
        if changed:
            row.refresh_from_db()
            audit_record(
                actor_type="sellbot", actor_id=worker or "sellbot", action="sell.cancelled", account=row.account, obj=row,
                data={"order_id": row.order_id, "client_order_id": row.client_order_id, "symbol": row.symbol, "type": row.order_type,
                      "side": row.side, "attempt": row.attempts, "outcome": outcome, "error": updates["error"],
                      "age_seconds": row.age_seconds, "limit_minutes": row.limit_minutes, "broker_ms": broker_ms},
            )
    level = logging.INFO if outcome in (CancelOutcome.CANCELED, CancelOutcome.ALREADY_FINAL) else logging.WARNING
    if outcome == CancelOutcome.FAILED:
        level = logging.ERROR
    logger.log(level, "sellbot cancel account=%s order_id=%s symbol=%s attempt=%s outcome=%s broker_ms=%s %s",
               row.account.account_id, row.order_id, row.symbol, row.attempts, outcome, broker_ms, updates["error"])
    return CancelAttempt(outcome, retry=changed > 0 and outcome == CancelOutcome.RETRYING, error=error)
