"""The watchdog task tells a human: "sell bot stalled" once while it stays stalled, "resolved" once a
sweep finishes again, to a webhook receiver the test starts (Apprise json://)."""
from __future__ import annotations

import pytest
from django.core.cache import cache
from django.utils import timezone

from opitios import alerts
from opitios.celery import app as celery_app
from sellbot import services, tasks

from .test_watchdog import sweeps_stop

pytestmark = pytest.mark.django_db(transaction=True)  # alerts leave after the commit, as in production


def test_a_stalled_bot_alerts_once_and_resolves_once(config_file, receiver, alert_holds, monkeypatch):
    config_file.data["alerts"] = {"urls": [receiver.url]}
    config_file.write()
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    monkeypatch.setattr(tasks.sweep, "apply_async", lambda **kwargs: None)  # the re-dispatched sweep is not under test
    holds: list[tuple] = []
    monkeypatch.setattr(alerts.resolve_after_hold, "apply_async", lambda args, countdown: holds.append(args))
    holds = alert_holds
    cache.clear()
    sweeps_stop(minutes_ago=10)

    assert tasks.watchdog() == "stalled: sweep re-dispatched"
    assert tasks.watchdog() == "stalled: sweep re-dispatched"
    services.sweep_finish(sweep_id="s1", started_at=timezone.now(), counts={})
    assert tasks.watchdog() == "ok"
    assert len(holds) == 1 and alerts.resolve_after_hold(*holds[0])
    titles = [m["title"] for m in receiver.wait(2)]
    assert titles == ["[Opitios] sell bot stalled", "[Opitios] resolved: sell bot stalled"]
    cache.clear()
