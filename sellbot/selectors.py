"""Reads of the sell bot: its state, which accounts a sweep visits, and the status report."""
from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from accounts.selectors import tradable_accounts
from opitios.config import SellModuleConfig, current_config
from trading.models import OrderRecord

from .models import (
    AutoSellFill,
    BotStatus,
    CancelOutcome,
    DecisionOutcome,
    ManagedPosition,
    PositionStatus,
    SellBotState,
    SellCancellation,
    SellCounter,
    SellDecision,
)

STATE_PK = 1
LIVE_CANCEL_OUTCOMES = (CancelOutcome.PENDING, CancelOutcome.RETRYING)
PRICE_FAILURE_PREFIX = "price_fetch_failure:"
HOLD_PREFIX = "hold:"
AUTO_SELL_LOOKBACK = timedelta(days=4)  # option orders are day orders: a buy is final by its day's close


def sell_config() -> SellModuleConfig:
    return current_config().sell_module


def bot_state_defaults() -> dict:
    """The singleton's first values: ``sell_module.enabled`` from the configuration."""
    enabled = sell_config().enabled
    return {"enabled": enabled, "status": BotStatus.RUNNING if enabled else BotStatus.STOPPED, "changed_at": timezone.now(),
            "changed_by": "config"}


def bot_state() -> SellBotState:
    """The singleton; before its first write (``services.bot_state_ensure``) an unsaved one with the
    configured defaults. A read never creates the row."""
    state = SellBotState.objects.filter(pk=STATE_PK).first()
    return state if state is not None else SellBotState(pk=STATE_PK, **bot_state_defaults())


def stall_after(config: SellModuleConfig) -> timedelta:
    """No finished sweep within 3 x check_interval means stalled."""
    return timedelta(seconds=3 * config.check_interval)


# Reported, never stored: enabled, and no sweep has finished since the bot was started.
STARTING = "starting"


def bot_health(*, state: SellBotState | None = None, now: datetime | None = None) -> tuple[str, bool, str]:
    """(status, healthy, why). Stopped on purpose is healthy; enabled with no recent sweep is stalled."""
    state = state or bot_state()
    now = now or timezone.now()
    config = sell_config()
    if not state.enabled:
        return BotStatus.STOPPED, True, "stopped by an operator" if state.changed_by != "config" else "disabled in sell_module"
    last = state.last_sweep_finished_at
    # A just-started bot, or a just-started worker, gets one grace window for its first sweep.
    marks = [t for t in (last, state.changed_at, state.worker_started_at) if t]
    since = max(marks) if marks else None
    if since is None or now - since > stall_after(config):
        return BotStatus.STALLED, False, f"no sweep finished within {stall_after(config).total_seconds():g}s"
    if last is None or (state.changed_at and last < state.changed_at):
        return STARTING, True, "started; waiting for the first sweep"
    return BotStatus.RUNNING, True, "sweeping"


def heartbeat_fresh(state: SellBotState, now: datetime) -> bool:
    return bool(state.heartbeat_at and now - state.heartbeat_at <= stall_after(sell_config()))


def auto_sell_buys(*, account_pk: int | None = None, now: datetime | None = None):
    """Accepted option buys placed with ``auto_sell_enabled`` whose fills the sweep has not finished
    absorbing into a ManagedPosition."""
    now = now or timezone.now()
    finished = AutoSellFill.objects.filter(account_id=OuterRef("account_id"), client_order_id=OuterRef("client_order_id"), final=True)
    qs = OrderRecord.objects.filter(
        auto_sell_enabled=True, side="buy", asset_class="us_option", outcome="accepted", is_current=True,
        received_at__gte=now - AUTO_SELL_LOOKBACK,
    ).exclude(broker_order_id="").filter(~Exists(finished))
    if account_pk is not None:
        qs = qs.filter(account_id=account_pk)
    return qs


def account_auto_sell_buys(*, account_pk: int, now: datetime | None = None) -> list:
    """``auto_sell_buys`` of one account, as two plain indexed queries (the second only when there are
    candidates): each account check runs this, and building the correlated ``Exists`` per check cost
    more than the queries. The same rows as ``auto_sell_buys(account_pk=...)``."""
    now = now or timezone.now()
    records = list(
        OrderRecord.objects.filter(
            account_id=account_pk, auto_sell_enabled=True, side="buy", asset_class="us_option", outcome="accepted", is_current=True,
            received_at__gte=now - AUTO_SELL_LOOKBACK,
        ).exclude(broker_order_id="")
    )
    if not records:
        return []
    finished = set(
        AutoSellFill.objects.filter(account_id=account_pk, final=True, client_order_id__in=[r.client_order_id for r in records])
        .values_list("client_order_id", flat=True)
    )
    return [r for r in records if r.client_order_id not in finished]


def accounts_to_sweep(*, config: SellModuleConfig) -> list[int]:
    """Tradable accounts with managed positions, open bot orders, pending opted-in buys or unfinished
    cancellations; every enabled account when ``manage_all_option_positions`` is on."""
    # Not mismatched or unverified accounts: every order there is refused, so a sweep would only
    # pile up refused decisions.
    enabled = tradable_accounts()
    if config.manage_all_option_positions:
        return list(enabled.values_list("pk", flat=True).order_by("pk"))
    live_positions = ManagedPosition.objects.filter(account_id=OuterRef("pk"), opted_in=True).exclude(status=PositionStatus.CLOSED)
    live_cancels = SellCancellation.objects.filter(account_id=OuterRef("pk"), outcome__in=LIVE_CANCEL_OUTCOMES)
    buys = auto_sell_buys().filter(account_id=OuterRef("pk"))
    qs = enabled.filter(Exists(live_positions) | Exists(live_cancels) | Exists(buys))
    return list(qs.values_list("pk", flat=True).order_by("pk"))


def managed_symbols(*, account_pks: list[int]) -> dict[int, list[str]]:
    """The symbols of each account's live opted-in managed positions (what its check prices)."""
    rows = (ManagedPosition.objects.filter(account_id__in=account_pks, opted_in=True).exclude(status=PositionStatus.CLOSED)
            .values_list("account_id", "symbol"))
    out: dict[int, list[str]] = {}
    for pk, symbol in rows:
        out.setdefault(pk, []).append(symbol)
    return out


def counters(prefix: str) -> dict[str, int]:
    """The SellCounter values named ``<prefix><key>``, by key."""
    return {c.name.removeprefix(prefix): c.value for c in SellCounter.objects.filter(name__startswith=prefix).order_by("name")}


def _rates(model, time_field: str, ok: Q, done: Q, now: datetime) -> dict:
    out = {}
    for label, window in (("last_hour", timedelta(hours=1)), ("last_24h", timedelta(hours=24))):
        agg = model.objects.filter(**{f"{time_field}__gte": now - window}).aggregate(
            total=Count("pk", filter=done), ok=Count("pk", filter=ok)
        )
        out[label] = {"total": agg["total"], "succeeded": agg["ok"], "rate": round(agg["ok"] / agg["total"], 4) if agg["total"] else None}
    return out


def bot_report(*, workers: list[str] | None = None) -> dict:
    """Everything GET /sell reports (docs/api.md, "Sell bot"); ``workers`` are the live workers, when the caller asked them."""
    started = time.perf_counter()
    now = timezone.now()
    state = bot_state()
    status, healthy, why = bot_health(state=state, now=now)
    orders = SellDecision.objects.aggregate(
        placed=Count("pk", filter=~Q(outcome=DecisionOutcome.PENDING)),
        succeeded=Count("pk", filter=Q(outcome__in=(DecisionOutcome.PLACED, DecisionOutcome.REPLAYED))),
        failed=Count("pk", filter=Q(outcome__in=("refused", "rejected", "failed"))),
    )
    cancels = SellCancellation.objects.aggregate(
        succeeded=Count("pk", filter=Q(outcome__in=(CancelOutcome.CANCELED, CancelOutcome.ALREADY_FINAL))),
        failed=Count("pk", filter=Q(outcome=CancelOutcome.FAILED)),
        retrying=Count("pk", filter=Q(outcome__in=LIVE_CANCEL_OUTCOMES)),
    )
    failures = counters(PRICE_FAILURE_PREFIX)
    positions = dict(
        ManagedPosition.objects.filter(opted_in=True).values_list("status").annotate(n=Count("pk")).order_by()
    )
    placed_ok = Q(outcome__in=("placed", "replayed"))
    placed_done = ~Q(outcome="pending")
    cancel_ok = Q(outcome__in=(CancelOutcome.CANCELED, CancelOutcome.ALREADY_FINAL))
    cancel_done = ~Q(outcome__in=LIVE_CANCEL_OUTCOMES)
    report = {
        "enabled": state.enabled,
        # Running means sweeping: a heartbeat alone (a sweep started, none finished) is not enough.
        "running": state.enabled and status == BotStatus.RUNNING and heartbeat_fresh(state, now),
        "status": status,
        "healthy": healthy,
        "status_reason": why,
        "changed_at": state.changed_at,
        "changed_by": state.changed_by,
        "heartbeat_at": state.heartbeat_at,
        "check_interval_seconds": sell_config().check_interval,
        "last_sweep": {
            "id": state.last_sweep_id,
            "started_at": state.last_sweep_started_at,
            "finished_at": state.last_sweep_finished_at,
            "duration_ms": state.last_sweep_duration_ms,
            "counts": state.last_sweep_counts,
            "worker": state.worker,
        },
        "positions": {s: positions.get(s, 0) for s in PositionStatus.values},
        "orders": orders,
        "cancellations": cancels,
        "price_fetch_failures": failures,
        "holds": counters(HOLD_PREFIX),
        "success_rates": {
            "orders": _rates(SellDecision, "decided_at", placed_ok, placed_done, now),
            "cancellations": _rates(SellCancellation, "created_at", cancel_ok, cancel_done, now),
        },
        "workers": workers,
    }
    report["report_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return report
