"""Tick-driven exits (sellbot/ticks.py) and the sweep's streamed marks (sellbot/marks.py), against a running
alpacasim over real HTTP; the ticks are what the hub hands the task (its last-value form)."""
import time
from decimal import Decimal

import pytest

from opitios import lastvalue
from sellbot import services, ticks
from sellbot.locks import held_lock
from sellbot.marks import rest_calls_saved
from sellbot.models import ManagedPosition, SellDecision

from .conftest import OPTION, buy_option

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def bought(sim, sim_accounts):
    sim.set_price(OPTION, bid=1.95, ask=2.00)
    services.quotes._clock_cache = None  # not a closed clock an earlier test left in the process
    account = sim_accounts["account_001"]
    buy_option(account, qty=2)
    assert services.account_check(account_pk=account.pk).counts.get("fills_absorbed") == 1
    return account


def tick(bid, ask, age=0.0):
    return {"bid": bid, "ask": ask, "bid_size": 10, "ask_size": 10, "timestamp": "2026-11-29T15:00:00Z",
            "received_at": time.time() - age}


def sells(sim):
    return [o for a in sim.state()["accounts"] for o in a.get("orders", []) if o["side"] == "sell"]


def test_a_tick_crossing_the_stop_sells_once_and_the_sweep_agrees(sim, bought):
    result = ticks.tick_evaluate(symbol=OPTION, tick=tick(1.55, 1.60), worker="w1")
    assert result.skipped == "" and result.counts.get("decisions") == 1 and result.counts.get("orders_ok") == 1, result
    decision = SellDecision.objects.get()
    assert decision.reason == "stop_loss" and decision.detail.startswith("tick: ") and decision.client_order_id.endswith("-1")
    assert decision.limit_price == Decimal("1.55") and decision.outcome == "placed"
    (order,) = sells(sim)
    assert order["client_order_id"] == decision.client_order_id and order["qty"] == "2"
    # A second tick finds the position closing; the sweep's check finds the exit and places nothing.
    again = ticks.tick_evaluate(symbol=OPTION, tick=tick(1.50, 1.55), worker="w1")
    assert "decisions" not in again.counts
    check = services.account_check(account_pk=bought.pk)
    assert "decisions" not in check.counts
    assert SellDecision.objects.count() == 1 and len(sells(sim)) == 1


def test_a_tick_inside_the_bounds_holds_without_a_write(sim, bought):
    before = ManagedPosition.objects.get()
    result = ticks.tick_evaluate(symbol=OPTION, tick=tick(2.05, 2.10))
    assert result.counts == {"evaluated": 1}
    after = ManagedPosition.objects.get()
    assert (after.status, after.high_water_mark, after.updated_at) == ("open", before.high_water_mark, before.updated_at)
    assert not SellDecision.objects.exists() and not sells(sim)


def test_a_tick_while_the_sweep_holds_the_account_leaves_it_to_the_sweep(sim, bought):
    with held_lock(f"account:{bought.pk}", ttl=30) as mine:
        assert mine
        result = ticks.tick_evaluate(symbol=OPTION, tick=tick(1.55, 1.60))
    assert result.counts.get("locked") == 1 and not SellDecision.objects.exists()
    # The next tick, once the lock is free, sells.
    assert ticks.tick_evaluate(symbol=OPTION, tick=tick(1.55, 1.60)).counts.get("orders_ok") == 1


def test_a_stale_tick_or_a_stopped_bot_does_nothing(sim, bought):
    assert ticks.tick_evaluate(symbol=OPTION, tick=tick(1.55, 1.60, age=5)).skipped == "stale_tick"
    services.bot_control(action="stop", actor_id="t")
    assert ticks.tick_evaluate(symbol=OPTION, tick=tick(1.55, 1.60)).skipped == "stopped"
    assert not SellDecision.objects.exists() and not sells(sim)


def test_a_closed_market_holds_on_the_tick(sim, bought):
    sim.set_clock(is_open=False)
    services.quotes._clock_cache = None  # the process caches the clock for one interval
    result = ticks.tick_evaluate(symbol=OPTION, tick=tick(1.55, 1.60))
    assert result.counts.get("hold:market_closed") == 1 and not SellDecision.objects.exists()


def test_the_sweep_takes_streamed_marks_and_saves_the_rest_call(sim, bought):
    lastvalue.put(lastvalue.key("q", OPTION), tick(1.55, 1.60))
    sim.set_fault("option_quotes", status=503, count=1)  # armed: a REST quote call would fail the batch
    saved = rest_calls_saved()
    snap, failures = services.market_snapshot_take(symbols=[OPTION], clock_account_pk=bought.pk)
    assert failures == {} and snap.quotes[OPTION].bid == Decimal("1.55")
    assert rest_calls_saved() == saved + 1
    services.account_check(account_pk=bought.pk, market=snap)
    assert SellDecision.objects.get().reason == "stop_loss"
    # A stale streamed value falls back to REST (which meets the armed fault).
    lastvalue.put(lastvalue.key("q", OPTION), tick(1.55, 1.60, age=60))
    _, failures = services.market_snapshot_take(symbols=[OPTION], clock_account_pk=bought.pk)
    assert failures == {"quotes_failed:broker_unavailable": 1} and rest_calls_saved() == saved + 1


def test_a_symbol_sold_on_a_tick_is_marked_settled_for_the_hub(sim, bought):
    assert ticks.symbols_settled([OPTION]) == {}
    held = ticks.tick_evaluate(symbol=OPTION, tick=tick(2.05, 2.10))  # open and holding: not settled
    assert "settled" not in held.counts and ticks.symbols_settled([OPTION]) == {}
    before = time.time()
    sold = ticks.tick_evaluate(symbol=OPTION, tick=tick(1.55, 1.60))
    assert sold.counts.get("orders_ok") == 1 and sold.counts.get("settled") == 1, sold
    marks = ticks.symbols_settled([OPTION, "OTHER"])
    assert list(marks) == [OPTION] and before <= marks[OPTION] <= time.time()
    # A tick that still reaches the task (sent before the hub saw the mark) settles it again, placing nothing.
    again = ticks.tick_evaluate(symbol=OPTION, tick=tick(1.50, 1.55))
    assert again.counts == {"settled": 1} and SellDecision.objects.count() == 1


def test_an_unwritable_settled_mark_costs_only_the_mark(sim, bought, monkeypatch):
    class Unwritable:
        def get_many(self, keys):
            return {}

        def set(self, *args, **kwargs):
            raise ConnectionError("cache down")

    monkeypatch.setattr(ticks, "cache", Unwritable())  # only the marks' cache: the order path keeps its own
    sold = ticks.tick_evaluate(symbol=OPTION, tick=tick(1.55, 1.60))
    assert sold.counts.get("orders_ok") == 1 and "settled" not in sold.counts, sold
