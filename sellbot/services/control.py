"""The sell bot's control and sweep bookkeeping: start/stop, sweep begin/finish, the watchdog."""
from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from opitios.celery import app as celery_app
from opitios.formats import iso

from ..models import BotStatus, SellBotState
from ..selectors import STATE_PK, bot_health, bot_state_defaults, sell_config

logger = logging.getLogger("opitios.sellbot")


def bot_state_ensure() -> SellBotState:
    """The singleton, created on first use with the configured defaults (selectors only read it)."""
    state = SellBotState.objects.filter(pk=STATE_PK).first()
    if state is None:
        state, _ = SellBotState.objects.get_or_create(pk=STATE_PK, defaults=bot_state_defaults())
    return state


def bot_control(*, action: str, actor_id: str) -> SellBotState:
    """start | stop | restart. The state is in the database, so every worker obeys the next time it looks."""
    if action not in ("start", "stop", "restart"):
        raise ValueError(f"unknown action {action!r}")
    now = timezone.now()
    with transaction.atomic():
        state = bot_state_ensure()
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


SWEEP_TASK = "sellbot.sweep"


def _dispatch_sweep() -> None:
    # By name: sellbot/tasks.py imports these services, so they never import it back.
    celery_app.send_task(SWEEP_TASK, expires=max(sell_config().check_interval, 1.0))


def sweep_begin(*, sweep_id: str, worker: str) -> SellBotState | None:
    """Mark a sweep started; None when the bot is stopped (then nothing runs)."""
    state = bot_state_ensure()
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
    bot_state_ensure()
    SellBotState.objects.filter(pk=STATE_PK).update(worker_started_at=now or timezone.now())


def bot_watchdog(*, worker: str) -> bool:
    """True when the bot is enabled and stalled; the first detection is logged and audited."""
    state = bot_state_ensure()
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
                         data={"reason": why, "last_sweep_finished_at": iso(state.last_sweep_finished_at)})
    return True
