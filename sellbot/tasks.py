"""Sell-bot Celery tasks. Thin: they take ids, call a service, and handle retries.

Beat sends ``sellbot.sweep`` every ``check_interval`` and ``sellbot.watchdog`` alongside it
(CELERY_BEAT_SCHEDULE in opitios/settings/base.py).
"""
from __future__ import annotations

import logging
import uuid

from celery import shared_task
from celery.signals import worker_init, worker_ready
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from opitios import metrics
from opitios.alerts import alert_raise, alert_resolve

from . import selectors, services, ticks, workers
from .market import MarketSnapshot

logger = logging.getLogger("opitios.sellbot")


@worker_init.connect
def _sellbot_watchdog_grace(**kwargs):
    """Before the worker consumes anything (a watchdog queued while it was down included): an ordinary
    restart restarts the watchdog's grace window, so it is not reported as a stall."""
    from django.db import connection

    try:
        services.worker_started()
    except Exception as exc:  # noqa: BLE001 - the database may be down at start; the worker must not fail for it
        logger.warning(
            "could not record the worker start (%s); the watchdog counts from the last sweep", exc.__class__.__name__
        )
    finally:
        connection.close()  # not into the pool's forks


@worker_ready.connect
def _sellbot_watchdog_grace_ready(**kwargs):
    """Again once the worker can consume (pool forked, broker connected, mingle done): on a loaded host
    that takes seconds after worker_init, longer than the 3 x check_interval grace, and the first
    watchdog would report the restart as a stall before the first sweep could run."""
    _sellbot_watchdog_grace()


def _queued_key(account_pk: int) -> str:
    return f"sellbot:queued:{account_pk}"


# Not acks_late: beat sends a fresh sweep every interval, so redelivering a stale one after a crash
# would only add a late duplicate; the message also expires after one interval.
@shared_task(name="sellbot.sweep", ignore_result=True, soft_time_limit=20, time_limit=30)
def sweep() -> dict:
    """Fan out ``sellbot.check_account`` to every account with something to do."""
    sweep_id = uuid.uuid4().hex[:12]
    worker = workers.worker_name()
    started = timezone.now()
    if services.sweep_begin(sweep_id=sweep_id, worker=worker) is None:
        return {"skipped": "stopped"}
    config = selectors.sell_config()
    accounts = selectors.accounts_to_sweep(config=config)
    # One clock and one batch of quotes for the whole sweep (sellbot.market); each check gets its share.
    symbols = selectors.managed_symbols(account_pks=accounts)
    market, market_failures = services.market_snapshot_take(
        symbols={s for held in symbols.values() for s in held}, clock_account_pk=accounts[0] if accounts else None,
    )
    # One queued check per account: a slow sweep never piles messages up behind itself. The marker
    # expires, so a check lost with a killed worker is sent again a few intervals later.
    marker_ttl = max(5.0, 5 * config.check_interval)
    dispatched = 0
    for pk in accounts:
        if cache.add(_queued_key(pk), sweep_id, marker_ttl):
            check_account.apply_async((pk,), {"market": market.for_symbols(symbols.get(pk, ())).to_message()}, expires=marker_ttl)
            dispatched += 1
    counts = {"accounts": len(accounts), "dispatched": dispatched, "already_queued": len(accounts) - dispatched,
              "quoted_symbols": len(market.quotes), **market_failures}
    services.sweep_finish(sweep_id=sweep_id, started_at=started, counts=counts)
    metrics.sweep_seconds.observe((timezone.now() - started).total_seconds())
    metrics.sweep_accounts.labels("dispatched").inc(dispatched)
    metrics.sweep_accounts.labels("already_queued").inc(len(accounts) - dispatched)
    return {"sweep_id": sweep_id, **counts}


# acks_late: a check taken off the queue by a worker that stops before finishing goes back to the broker
# (a warm shutdown restores it; with Redis, an unacknowledged message returns after visibility_timeout).
# A killed process does not get it back quickly: a check lost that way is re-sent by a later sweep once
# its queued marker expires. Rerunning is safe: per-account lock, and exit orders carry deterministic
# client ids persisted before submission.
# ignore_result: nothing reads it (the outcome is logged and in the task events); storing a result
# per account per sweep only cost the result backend a write.
@shared_task(name="sellbot.check_account", acks_late=True, ignore_result=True, soft_time_limit=40, time_limit=50)
def check_account(account_pk: int, market: dict | None = None) -> dict:
    cache.delete(_queued_key(account_pk))
    result = services.account_check(account_pk=account_pk, worker=workers.worker_name(), market=MarketSnapshot.from_message(market))
    for pk in result.cancellations:
        cancel_order.delay(pk)
    for event, n in result.counts.items():  # keys are the service's fixed names (and error codes)
        metrics.check_events.labels(event).inc(n)
    return {"account_pk": account_pk, "skipped": result.skipped, **result.counts}


# Sent by the market-data hub for a streamed quote of a managed symbol (docs/streaming.md, "Tick-driven
# exits"), at most once per symbol per sell_module.tick_eval_interval_ms. Not acks_late and no retry: a
# tick lost with a worker is followed by the next tick and by the sweep, which stays the safety net; the
# hub also sends it with a short expiry, so a backlog never acts on old prices.
@shared_task(name="sellbot.tick_check", ignore_result=True, soft_time_limit=20, time_limit=30)
def tick_check(symbol: str, tick: dict) -> dict:
    result = ticks.tick_evaluate(symbol=symbol, tick=tick, worker=workers.worker_name())
    for event, n in result.counts.items():
        metrics.tick_events.labels(event).inc(n)
    return {"symbol": symbol, "skipped": result.skipped, **result.counts}


# acks_late, as for check_account. A cancel lost with a killed process is dispatched again by the
# account's next check once its row is past the re-dispatch grace (services.stale_orders_flag), whether
# the order is still open or has closed since. Rerunning is safe: a second cancel of the same order ends
# as already_final, and a finished SellCancellation row is never moved again.
#
# Retries: transient broker errors (timeouts, 5xx, 429) are retried up to 5 times with exponential
# backoff, jitter and a 60 s cap. The retry is raised here rather than through ``autoretry_for``
# because every attempt must be written to the SellCancellation row first, and because Celery's full
# jitter (0..2^n s) lets a later delay be shorter than an earlier one; ours stays in the upper half of
# each step. SELLBOT_CANCEL_RETRY_BASE_SECONDS (default 1) scales the steps, so tests run in seconds.
@shared_task(name="sellbot.cancel_order", bind=True, acks_late=True, max_retries=5, soft_time_limit=20, time_limit=30)
def cancel_order(self, cancellation_pk: int) -> str:
    delay = services.retry_delay(retries=self.request.retries, base=settings.SELLBOT_CANCEL_RETRY_BASE_SECONDS, cap=settings.SELLBOT_CANCEL_RETRY_MAX_SECONDS)
    attempt = services.cancellation_attempt(
        cancellation_pk=cancellation_pk, retries=self.request.retries, max_retries=self.max_retries, next_delay=delay,
        worker=workers.worker_name(),
    )
    if attempt.retry:
        metrics.cancel_retries.inc()
        raise self.retry(exc=attempt.error, countdown=delay)
    return attempt.outcome


# Not acks_late: beat runs it again within one interval.
@shared_task(name="sellbot.watchdog", ignore_result=True, soft_time_limit=10, time_limit=15)
def watchdog() -> str:
    stalled = services.bot_watchdog(worker=workers.worker_name())
    if stalled:
        sweep.apply_async(expires=max(selectors.sell_config().check_interval, 1.0))
    status, healthy, why = selectors.bot_health()
    if healthy:
        alert_resolve("sellbot_stalled")
    else:
        alert_raise("sellbot_stalled", "sell bot stalled", f"{why}; the watchdog re-dispatched a sweep.")
    return "stalled: sweep re-dispatched" if stalled else "ok"
