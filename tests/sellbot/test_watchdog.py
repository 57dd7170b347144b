"""The watchdog service: an enabled bot with no finished sweep is flagged stalled once, audited
once, re-dispatched every time it looks, and cleared by the next finished sweep. The task itself runs on
the real worker in tests/e2e/test_sellbot_worker.py."""
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from sellbot import services
from sellbot.models import SellBotState

pytestmark = pytest.mark.django_db


def state() -> SellBotState:
    return SellBotState.objects.get(pk=1)


def sweeps_stop(minutes_ago: float, *, enabled: bool = True) -> None:
    then = timezone.now() - timedelta(minutes=minutes_ago)
    SellBotState.objects.update_or_create(pk=1, defaults={"enabled": enabled, "status": "running" if enabled else "stopped",
                                                          "changed_at": then, "last_sweep_finished_at": then, "heartbeat_at": then})


def test_a_stalled_bot_is_flagged_and_audited_once_then_cleared_by_the_next_sweep(config_file):
    sweeps_stop(minutes_ago=10)

    assert services.bot_watchdog(worker="w1") is True
    assert services.bot_watchdog(worker="w2") is True  # still stalled: re-dispatch again, but no second alarm
    flagged = state()
    assert flagged.status == "stalled" and flagged.stalled_at is not None
    [event] = AuditEvent.objects.filter(action="sellbot.stalled")
    assert event.actor_id == "w1" and "no sweep finished" in event.data["reason"]

    services.sweep_finish(sweep_id="s1", started_at=timezone.now(), counts={})
    cleared = state()
    assert (cleared.status, cleared.stalled_at) == ("running", None)
    assert services.bot_watchdog(worker="w1") is False


def test_a_recent_sweep_or_a_stopped_bot_is_not_stalled(config_file):
    sweeps_stop(minutes_ago=0)
    assert services.bot_watchdog(worker="w1") is False
    sweeps_stop(minutes_ago=60, enabled=False)
    assert services.bot_watchdog(worker="w1") is False
    assert state().status == "stopped" and not AuditEvent.objects.filter(action="sellbot.stalled").exists()
