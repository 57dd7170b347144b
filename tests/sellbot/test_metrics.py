"""The sell bot's series on /metrics, moved by its real tasks run in the test process against a running
alpacasim: a sweep (duration, accounts dispatched), an account check (its decisions and counts), and a
cancellation retried after a transient broker error."""
from __future__ import annotations

import time

import pytest

from sellbot import tasks
from sellbot.models import CancelOutcome, SellCancellation
from tests.trading.test_metrics import scrape, value

from .conftest import OPTION
from .test_market import bought  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_sweep_and_check_series(sim, bought, monkeypatch):  # noqa: F811
    sent = []
    # the sweep's own dispatch is the one thing not run: the test runs the check itself, below
    monkeypatch.setattr(tasks.check_account, "apply_async", lambda args, kwargs=None, **options: sent.append((args, kwargs)))
    sim.set_price(OPTION, bid=2.30, ask=2.35)  # take profit: one exit decision (the sweep's snapshot carries the price)
    before = scrape()
    tasks.sweep()
    (args, kwargs), = sent
    result = tasks.check_account(*args, **kwargs)
    after = scrape()

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("opitios_sellbot_sweep_seconds_count") == 1
    assert moved("opitios_sellbot_sweep_accounts_total", kind="dispatched") == 1
    assert result["decisions"] == 1, result
    assert moved("opitios_sellbot_check_events_total", event="decisions") == 1
    assert moved("opitios_sellbot_check_events_total", event="evaluated") == 1


def test_cancellation_retries_are_counted(sim, bought, config_file, settings):  # noqa: F811
    from sellbot import services

    settings.SELLBOT_CANCEL_RETRY_BASE_SECONDS = 0.01
    config_file.sell(order_cancel_minutes=0.0001)
    sim.set_price(OPTION, price=1.50, illiquid=True)  # the exit rests unfilled, then goes stale
    services.account_check(account_pk=bought.pk)
    time.sleep(0.02)
    row = SellCancellation.objects.get(pk=services.account_check(account_pk=bought.pk).cancellations[0])
    sim.set_fault("order_cancel", status=503, count=2)
    before = scrape()
    tasks.cancel_order.apply(args=(row.pk,))  # in process: each retry runs again at once
    after = scrape()
    row.refresh_from_db()
    assert row.attempts == 3 and row.outcome != CancelOutcome.RETRYING, (row.attempts, row.outcome)
    assert value(after, "opitios_sellbot_cancel_retries_total") - value(before, "opitios_sellbot_cancel_retries_total") == 2
