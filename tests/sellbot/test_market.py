"""The sweep's market snapshot (sellbot/market.py): one clock and one quote batch per sweep, used by
the account checks while fresh; against a running alpacasim over real HTTP."""
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.broker import Clock, Quote
from sellbot import services
from sellbot.market import MAX_AGE_SECONDS, MarketSnapshot, max_age
from sellbot.models import ManagedPosition, SellDecision

from .conftest import OPTION, buy_option

pytestmark = pytest.mark.django_db(transaction=True)


def test_message_round_trip():
    at = datetime(2027, 1, 4, 15, 0, tzinfo=UTC)
    clock = Clock(timestamp=at, is_open=True, next_open=at, next_close=at.replace(hour=21))
    quote = Quote(symbol=OPTION, bid=Decimal("1.95"), ask=Decimal("2.00"), bid_size=Decimal(3), ask_size=None, timestamp=at)
    snap = MarketSnapshot(1234.5, clock, {OPTION: quote, "SPY270115C00600000": None})
    back = MarketSnapshot.from_message(snap.to_message())
    assert back == snap
    assert snap.for_symbols([OPTION, "QQQ270115C00500000"]).quotes == {OPTION: quote}


@pytest.mark.parametrize("message", [None, {}, {"quotes": {}}, {"taken_at": "x"}, {"taken_at": 1, "quotes": {OPTION: {"bid": "nan?"}}}])
def test_malformed_message_means_no_snapshot(message):
    assert MarketSnapshot.from_message(message) is None


def test_max_age_is_one_interval_capped():
    assert max_age(1) == 1 and max_age(3600) == MAX_AGE_SECONDS and max_age(0.1) == 0.5


@pytest.fixture
def bought(sim, sim_accounts):
    sim.set_price(OPTION, bid=1.95, ask=2.00)
    account = sim_accounts["account_001"]
    buy_option(account, qty=2)
    assert services.account_check(account_pk=account.pk).counts.get("fills_absorbed") == 1
    return account


def snapshot(account):
    snap, failures = services.market_snapshot_take(symbols=[OPTION], clock_account_pk=account.pk)
    assert failures == {} and snap.clock is not None and snap.clock.is_open
    return snap


def test_check_prices_from_a_fresh_snapshot(sim, bought):
    snap = snapshot(bought)
    assert snap.quotes[OPTION].bid == Decimal("1.95")
    sim.set_price(OPTION, bid=2.30, ask=2.35)  # take profit, but the snapshot was taken before
    result = services.account_check(account_pk=bought.pk, market=snap)
    assert result.counts.get("evaluated") == 1 and "market_snapshot_stale" not in result.counts
    assert not SellDecision.objects.exists()
    # The next check without the snapshot sees the move.
    services.account_check(account_pk=bought.pk)
    assert SellDecision.objects.get().reason == "take_profit"


def test_stale_snapshot_is_not_used(sim, bought, config_file):
    config_file.sell(check_interval=1)
    snap = replace(snapshot(bought), taken_at=time.time() - 5)
    sim.set_price(OPTION, bid=2.30, ask=2.35)
    result = services.account_check(account_pk=bought.pk, market=snap)
    assert result.counts.get("market_snapshot_stale") == 1
    decision = SellDecision.objects.get()
    assert (decision.reason, decision.limit_price) == ("take_profit", Decimal("2.30"))


def test_symbol_the_snapshot_lacks_is_fetched_by_the_check(sim, bought):
    snap = MarketSnapshot(time.time(), None, {})
    sim.set_price(OPTION, bid=1.55, ask=1.60)
    services.account_check(account_pk=bought.pk, market=snap)
    assert SellDecision.objects.get().reason == "stop_loss"


def test_covered_symbol_without_quote_falls_back_to_the_position_price(sim, bought):
    snap = MarketSnapshot(time.time(), None, {OPTION: None})
    result = services.account_check(account_pk=bought.pk, market=snap)
    assert result.counts.get("evaluated") == 1 and "price_fetch_failures" not in result.counts
    assert ManagedPosition.objects.get().status == "open"


def test_failed_quote_batch_leaves_the_quotes_to_the_checks(sim, bought):
    sim.set_fault("option_quotes", status=503, count=1)
    snap, failures = services.market_snapshot_take(symbols=[OPTION], clock_account_pk=bought.pk)
    assert failures == {"quotes_failed:broker_unavailable": 1} and snap.quotes == {} and snap.clock is not None
    sim.set_price(OPTION, bid=2.30, ask=2.35)
    services.account_check(account_pk=bought.pk, market=snap)
    assert SellDecision.objects.get().reason == "take_profit"


def test_sweep_sends_each_account_its_share(sim, bought, monkeypatch):
    from sellbot import tasks

    sent = []
    monkeypatch.setattr(tasks.check_account, "apply_async", lambda args, kwargs=None, **options: sent.append((args, kwargs)))
    result = tasks.sweep()
    assert result["dispatched"] == 1 and result["quoted_symbols"] == 1, result
    (args, kwargs), = sent
    snap = MarketSnapshot.from_message(kwargs["market"])
    assert args == (bought.pk,) and set(snap.quotes) == {OPTION} and snap.clock is not None and snap.fresh(5)
