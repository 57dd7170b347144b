"""Stale-order cancellation: flag the orders past their limit, and one audited cancel attempt."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.broker import (
    BrokerError,
    BrokerNotFound,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    UpstreamRateLimited,
    broker_for,
)
from accounts.models import AlpacaAccount
from audit.services import audit_record
from opitios.config import SellModuleConfig

from ..models import CancelOutcome, SellCancellation
from ..selectors import LIVE_CANCEL_OUTCOMES
from ..strategy import order_age_seconds, order_in_scope

logger = logging.getLogger("opitios.sellbot")


TRANSIENT_ERRORS = (BrokerTimeout, BrokerUnavailable, UpstreamRateLimited)


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
