"""The strategy rule by rule, at each boundary: exactly at the threshold and one tick either side."""
import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from accounts.broker import Clock, Quote
from opitios.config import PositionTimeLimitConfig, SellModuleConfig, StrategyOneConfig
from sellbot import strategy
from sellbot.strategy import PositionView, evaluate

NOW = datetime(2026, 1, 14, 15, 0, tzinfo=UTC)  # 10:00 New York, a Wednesday
SYMBOL = "AAPL260116C00190000"  # expires Friday 2026-01-16
CONFIG = SellModuleConfig()


def quote(bid, ask=None):
    return Quote(SYMBOL, D(bid) if bid is not None else None, D(ask) if ask is not None else None, None, None, NOW)


def clock(*, close_in=timedelta(hours=6), is_open=True):
    return Clock(timestamp=NOW, is_open=is_open, next_open=NOW + timedelta(hours=18), next_close=NOW + close_in)


def position(entry="1.00", hwm=None, opened=NOW - timedelta(minutes=5), current=None, symbol=SYMBOL):
    return PositionView(symbol, D(entry), opened, D(hwm) if hwm else None, D(current) if current else None)


def reason(pos, q, clk=None, config=CONFIG, now=NOW):
    return evaluate(pos, q, clk if clk is not None else clock(), config, now).reason


@pytest.fixture(params=["UTC", "America/Los_Angeles", "Asia/Tokyo"])
def server_tz(request):
    """Run with the server's TZ set; the strategy must not depend on it."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


# --- stop loss: price / entry <= 0.8 ---------------------------------------------------
@pytest.mark.parametrize(("bid", "expected"), [("0.79", "stop_loss"), ("0.80", "stop_loss"), ("0.81", "hold")])
def test_stop_loss_boundary(bid, expected):
    assert reason(position(), quote(bid, "1.05")) == expected


# --- take profit: price / entry >= 1.1 -----------------------------------------------
@pytest.mark.parametrize(("bid", "expected"), [("1.09", "hold"), ("1.10", "take_profit"), ("1.11", "take_profit")])
def test_take_profit_boundary(bid, expected):
    assert reason(position(), quote(bid, "1.20")) == expected


def test_take_profit_uses_the_bid_not_the_mid():
    # mid 1.15 would be past 1.1, but the bid is what an exit gets.
    assert reason(position(), quote("1.05", "1.25")) == "hold"


def test_stop_loss_checked_before_take_profit_order():
    config = replace(CONFIG, strategy_one=StrategyOneConfig(profit_rate=D("0.5"), stop_loss_rate=D("0.8")))
    assert reason(position(), quote("0.70", "0.75"), config=config) == "stop_loss"


# --- trailing stop: bid <= high-water mark x rate ---------------------------------------
TRAIL = replace(CONFIG, strategy_one=StrategyOneConfig(profit_rate=D("2"), stop_loss_rate=D("0.5"), trailing_stop_rate=D("0.9")))


@pytest.mark.parametrize(("bid", "expected"), [("1.34", "trailing_stop"), ("1.35", "trailing_stop"), ("1.36", "hold")])
def test_trailing_stop_boundary(bid, expected):
    # high-water mark 1.50 -> trigger at 1.35
    assert reason(position(hwm="1.50"), quote(bid, bid), config=TRAIL) == expected


def test_trailing_stop_off_by_default():
    assert reason(position(hwm="1.50"), quote("1.01", "1.01")) == "hold"


def test_high_water_mark_rises_with_the_mark():
    decision = evaluate(position(hwm="1.20"), quote("1.30", "1.40"), clock(), TRAIL, NOW)
    assert decision.high_water_mark == D("1.35") and decision.reason == "hold"


def test_high_water_mark_starts_at_entry():
    decision = evaluate(position(), quote("0.95", "0.97"), clock(), CONFIG, NOW)
    assert decision.high_water_mark == D("1.00")


# --- market close window ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("close_in", "expected"),
    [(timedelta(minutes=10) - timedelta(seconds=1), "market_close"), (timedelta(minutes=10), "market_close"), (timedelta(minutes=10, seconds=1), "hold")],
)
def test_market_close_window_boundary(close_in, expected):
    assert reason(position(), quote("1.00", "1.02"), clock(close_in=close_in)) == expected


def test_market_close_comes_first():
    assert reason(position(), quote("0.50", "0.52"), clock(close_in=timedelta(minutes=1))) == "market_close"


def test_market_closed_holds():
    assert reason(position(), quote("0.50", "0.52"), clock(is_open=False)) == "market_closed"


def test_no_clock_still_applies_price_rules():
    assert evaluate(position(), quote("0.50", "0.52"), None, CONFIG, NOW).reason == "stop_loss"


# --- maximum hold time from opened_at ------------------------------------------------------
HOLD_LIMIT = replace(CONFIG, position_time_limit=PositionTimeLimitConfig(enabled=True, max_hold_minutes=240))


@pytest.mark.parametrize(
    ("held", "expected"),
    [(timedelta(minutes=240) - timedelta(seconds=1), "hold"), (timedelta(minutes=240), "max_hold"), (timedelta(minutes=240, seconds=1), "max_hold")],
)
def test_max_hold_boundary(held, expected):
    assert reason(position(opened=NOW - held), quote("1.00", "1.02"), config=HOLD_LIMIT) == expected


def test_max_hold_off_by_default():
    assert reason(position(opened=NOW - timedelta(days=3)), quote("1.00", "1.02")) == "hold"


# --- 0DTE ---------------------------------------------------------------------------------
ZERO = "AAPL260114C00190000"  # expires on NOW's New York date


def test_zero_dte_flatten_sells_at_once():
    config = replace(CONFIG, zero_day_handling="flatten")
    assert reason(position(symbol=ZERO), quote("1.00", "1.02"), config=config) == "zero_dte_flatten"


def test_zero_dte_flatten_sells_even_without_a_price():
    config = replace(CONFIG, zero_day_handling="flatten")
    assert reason(position(symbol=ZERO), quote(None, None), config=config) == "zero_dte_flatten"


def test_zero_dte_strategy_applies_the_rules():
    assert reason(position(symbol=ZERO), quote("1.00", "1.02")) == "hold"
    assert reason(position(symbol=ZERO), quote("1.10", "1.12")) == "take_profit"


def test_flatten_leaves_later_expiries_alone():
    config = replace(CONFIG, zero_day_handling="flatten")
    assert reason(position(), quote("1.00", "1.02"), config=config) == "hold"


# --- prices ---------------------------------------------------------------------------------
def test_falls_back_to_current_price_without_a_bid():
    assert reason(position(current="1.10"), quote(None, "1.30")) == "take_profit"
    assert reason(position(current="0.80"), None) == "stop_loss"


def test_no_price_at_all():
    assert reason(position(), None) == "no_price"


def test_decision_carries_prices_and_pl():
    d = evaluate(position(), quote("1.20", "1.30"), clock(), CONFIG, NOW)
    assert (d.reason, d.exit_price, d.mark_price, d.pl_pct) == ("take_profit", D("1.20"), D("1.25"), D("20.00"))
    assert d.sell


def test_naive_now_refused():
    with pytest.raises(ValueError):
        evaluate(position(), quote("1", "1"), clock(), CONFIG, NOW.replace(tzinfo=None))


def test_zero_dte_reads_the_expiry_from_the_occ_symbol():
    on_expiry = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)
    assert strategy.is_zero_dte("SPY260320P00450000", on_expiry)
    assert strategy.is_zero_dte("SPY   260320P00450000", on_expiry)  # padded OCC
    assert not strategy.is_zero_dte("SPY260321P00450000", on_expiry)
    assert not strategy.is_zero_dte("AAPL", on_expiry)
    assert not strategy.is_zero_dte("AAPL261340C00190000", on_expiry)  # no such date


# --- the server's timezone does not matter ---------------------------------------------------
@pytest.mark.usefixtures("server_tz")
def test_zero_dte_uses_new_york_date_at_the_day_edges():
    config = replace(CONFIG, zero_day_handling="flatten")
    # 23:30 New York on the 14th is the 15th in UTC and Tokyo: still 0DTE for a 14th expiry.
    late = datetime(2026, 1, 15, 4, 30, tzinfo=UTC)
    assert strategy.is_zero_dte(ZERO, late)
    # 00:30 New York on the 14th is the 13th in Los Angeles.
    early = datetime(2026, 1, 14, 5, 30, tzinfo=UTC)
    assert strategy.is_zero_dte(ZERO, early)
    assert not strategy.is_zero_dte(ZERO, datetime(2026, 1, 14, 4, 59, tzinfo=UTC))
    assert reason(position(symbol=ZERO), quote("1", "1"), config=config, now=late, clk=clock(close_in=timedelta(hours=16))) == "zero_dte_flatten"


@pytest.mark.usefixtures("server_tz")
def test_max_hold_and_close_window_are_timezone_independent():
    tokyo = datetime(2026, 1, 15, 0, 0).astimezone()  # local naive -> aware in the server's zone
    opened = tokyo - timedelta(minutes=240)
    assert reason(position(opened=opened.astimezone(UTC)), quote("1", "1.02"), config=HOLD_LIMIT, now=tokyo,
                  clk=Clock(tokyo, True, tokyo + timedelta(hours=20), tokyo.astimezone(UTC) + timedelta(minutes=10))) == "market_close"
    assert reason(position(opened=opened.astimezone(UTC)), quote("1", "1.02"), config=HOLD_LIMIT, now=tokyo,
                  clk=Clock(tokyo, True, tokyo + timedelta(hours=20), tokyo.astimezone(UTC) + timedelta(hours=1))) == "max_hold"


@pytest.mark.parametrize("trailing", [None, D("0.9")])
def test_exit_bounds_agree_with_the_price_rules(trailing):
    """The hub sends a tick only outside exit_bounds: every bid inside holds, every bid outside fires a price rule."""
    config = replace(CONFIG, strategy_one=StrategyOneConfig(profit_rate=D("1.1"), stop_loss_rate=D("0.8"), trailing_stop_rate=trailing))
    pos = position(entry="2.00", hwm="2.10")
    low, high = strategy.exit_bounds(pos.entry_price, pos.high_water_mark, config)
    for cents in range(100, 300):
        bid = D(cents) / 100
        fired = evaluate(pos, quote(bid, bid + D("0.05")), clock(), config, NOW)
        assert fired.sell == (bid <= low or bid >= high), (bid, fired.reason, low, high)
    assert strategy.exit_bounds(D(0), None, config) is None
