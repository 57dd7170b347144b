"""Sessions on the NYSE calendar, on fixed clocks (set_clock(mode="real", now=...)), through alpaca-py.

Thanksgiving week 2026: Thursday 26 November is a holiday, Friday 27 closes early at 13:00 ET.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.requests import StockBarsRequest, StockLatestQuoteRequest, StockSnapshotRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetCalendarRequest,
    GetPortfolioHistoryRequest,
    LimitOrderRequest,
    MarketOrderRequest,
)

from .conftest import cash_account
from .test_orders import limit, market

NY = ZoneInfo("America/New_York")


def at(sim, text):
    """Freeze the simulator at New York local time ``text`` on the NYSE calendar."""
    sim.set_clock(mode="real", now=datetime.fromisoformat(text).replace(tzinfo=NY).isoformat())


def test_clock_and_calendar_know_holidays_and_early_closes(sim, trading):
    at(sim, "2026-11-27T09:00")
    clock = trading.get_clock()
    assert clock.is_open is False
    assert clock.next_open == datetime(2026, 11, 27, 9, 30, tzinfo=NY)
    assert clock.next_close == datetime(2026, 11, 27, 13, 0, tzinfo=NY)
    at(sim, "2026-11-27T13:30")
    clock = trading.get_clock()
    assert clock.is_open is False and clock.next_open == datetime(2026, 11, 30, 9, 30, tzinfo=NY)
    days = trading.get_calendar(GetCalendarRequest(start=date(2026, 11, 23), end=date(2026, 11, 30)))
    assert [d.date for d in days] == [date(2026, 11, x) for x in (23, 24, 25, 27, 30)]
    friday = days[3]
    assert friday.close == datetime(2026, 11, 27, 13, 0) and days[0].close == datetime(2026, 11, 23, 16, 0)
    years = trading.get_calendar(GetCalendarRequest(start=date(2025, 1, 1), end=date(2027, 12, 31)))
    assert {date(2025, 1, 9), date(2026, 7, 3), date(2027, 3, 26)}.isdisjoint(d.date for d in years)


def test_a_market_order_placed_while_closed_is_accepted_and_fills_at_the_open(sim, trading, stocks):
    at(sim, "2026-11-28T10:00")  # Saturday
    order = trading.submit_order(market("AAPL", 3))
    assert order.status == OrderStatus.ACCEPTED and Decimal(order.filled_qty) == 0
    q1 = stocks.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))["AAPL"]
    at(sim, "2026-11-29T22:00")  # quotes do not move while closed
    q2 = stocks.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert (q1.bid_price, q1.ask_price) == (q2.bid_price, q2.ask_price)
    assert trading.get_order_by_id(order.id).status == OrderStatus.ACCEPTED
    at(sim, "2026-11-30T09:30")
    open_quote = stocks.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))["AAPL"]
    filled = trading.get_order_by_id(order.id)
    assert filled.status == OrderStatus.FILLED
    assert Decimal(filled.filled_avg_price) == Decimal(str(open_quote.ask_price))


@pytest.mark.parametrize(
    ("placed", "after_close"),
    [("2026-11-30T10:00", "2026-11-30T16:00"), ("2026-11-27T10:00", "2026-11-27T13:00")],
    ids=["regular-close", "early-close"],
)
def test_day_orders_expire_at_the_close_and_gtc_orders_are_done_for_day(sim, trading, placed, after_close):
    cash_account(sim)
    at(sim, placed)
    sim.set_price("AAPL", 100)
    day = trading.submit_order(limit("AAPL", 1, 50, tif=TimeInForce.DAY))
    gtc = trading.submit_order(limit("AAPL", 1, 51, tif=TimeInForce.GTC))
    assert day.status == OrderStatus.NEW and day.expires_at is not None
    sim.set_clock(advance_seconds=(datetime.fromisoformat(after_close) - datetime.fromisoformat(placed)).seconds - 1)
    assert trading.get_order_by_id(day.id).status == OrderStatus.NEW
    sim.set_clock(advance_seconds=1)
    expired = trading.get_order_by_id(day.id)
    assert expired.status == OrderStatus.EXPIRED and expired.expired_at is not None
    assert trading.get_order_by_id(gtc.id).status == OrderStatus.DONE_FOR_DAY  # alive, resting overnight
    assert Decimal(trading.get_account().buying_power) == Decimal(100000) - 51
    at(sim, "2026-12-01T09:30")
    assert trading.get_order_by_id(gtc.id).status == OrderStatus.NEW


def test_extended_hours_limits_fill_only_in_extended_sessions(sim, trading):
    at(sim, "2026-11-30T08:00")  # pre-market
    sim.set_price("AAPL", 100)
    ext = trading.submit_order(
        LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                          limit_price=101, extended_hours=True)
    )
    regular = trading.submit_order(limit("AAPL", 1, 101, tif=TimeInForce.DAY))
    assert ext.status == OrderStatus.FILLED
    assert regular.status == OrderStatus.ACCEPTED
    at(sim, "2026-11-30T09:30")
    assert trading.get_order_by_id(regular.id).status == OrderStatus.FILLED
    at(sim, "2026-11-30T21:00")  # closed: not even extended orders trade
    late = trading.submit_order(
        LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                          limit_price=101, extended_hours=True)
    )
    assert late.status == OrderStatus.ACCEPTED


def test_opg_and_cls_orders_trade_at_the_auctions(sim, trading):
    at(sim, "2026-11-30T08:00")
    sim.set_price("AAPL", 100)
    opg = trading.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.OPG)
    )
    assert opg.status == OrderStatus.ACCEPTED
    at(sim, "2026-11-30T09:45")  # the opg order met the 09:30 auction, while AAPL stood at 100
    sim.set_price("AAPL", 105)
    cls_order = trading.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=2, side=OrderSide.SELL, time_in_force=TimeInForce.CLS)
    )
    opg = trading.get_order_by_id(opg.id)
    assert opg.status == OrderStatus.FILLED and Decimal(opg.filled_avg_price) == 100
    assert cls_order.status == OrderStatus.ACCEPTED
    with pytest.raises(APIError) as err:  # opg is refused during the regular session
        trading.submit_order(
            MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.OPG)
        )
    assert err.value.status_code == 422
    at(sim, "2026-11-30T16:00")
    sold = trading.get_order_by_id(cls_order.id)
    assert sold.status == OrderStatus.FILLED and Decimal(sold.filled_avg_price) == 105


def test_holidays_have_no_bars_and_snapshots_use_the_previous_session(sim, stocks):
    at(sim, "2026-11-30T11:00")
    daily = stocks.get_stock_bars(
        StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Day,
                         start=datetime(2026, 11, 23, tzinfo=NY), end=datetime(2026, 11, 28, tzinfo=NY))
    )["AAPL"]
    assert [b.timestamp.astimezone(NY).day for b in daily] == [23, 24, 25, 27]
    thanksgiving = stocks.get_stock_bars(
        StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Hour,
                         start=datetime(2026, 11, 26, tzinfo=NY), end=datetime(2026, 11, 27, tzinfo=NY))
    )
    assert thanksgiving.data.get("AAPL", []) == []
    early = stocks.get_stock_bars(
        StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Hour,
                         start=datetime(2026, 11, 27, tzinfo=NY), end=datetime(2026, 11, 28, tzinfo=NY))
    )["AAPL"]
    assert early[-1].timestamp.astimezone(NY).hour == 16  # after-hours end at 17:00 on an early close
    snap = stocks.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert snap.previous_daily_bar.timestamp.astimezone(NY).date() == date(2026, 11, 27)
    assert snap.previous_daily_bar.close == daily[-1].close
    assert snap.daily_bar.timestamp.astimezone(NY).date() == date(2026, 11, 30)
    assert timedelta(0) < snap.daily_bar.timestamp - snap.previous_daily_bar.timestamp


def test_last_equity_is_the_equity_at_the_previous_close(sim, trading):
    at(sim, "2026-11-30T10:00")
    sim.set_price("AAPL", 100)
    trading.submit_order(market("AAPL", 10))  # at 100.01
    assert Decimal(trading.get_account().last_equity) == 100000  # Friday's close: cash only
    at(sim, "2026-12-01T10:00")
    sim.set_price("AAPL", 110)
    acct = trading.get_account()
    assert Decimal(acct.last_equity) == Decimal("99999.90")  # Monday's close, AAPL at 100
    assert Decimal(acct.equity) == Decimal("100099.90")


def test_portfolio_history_has_the_equity_at_each_close(sim, trading):
    at(sim, "2026-11-30T10:00")
    sim.set_price("AAPL", 100)
    trading.submit_order(market("AAPL", 10))  # at 100.01
    at(sim, "2026-12-01T10:00")
    sim.set_price("AAPL", 110)
    at(sim, "2026-12-02T10:00")
    history = trading.get_portfolio_history(GetPortfolioHistoryRequest(period="1W", timeframe="1D"))
    days = [datetime.fromtimestamp(t, NY).date() for t in history.timestamp]
    assert days == [date(2026, 11, 27), date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 2)]
    assert history.equity == [100000.0, 99999.9, 100099.9, 100099.9]
    assert history.base_value == 100000.0 and history.profit_loss[-1] == pytest.approx(99.9)
    with pytest.raises(APIError) as err:
        trading.get_portfolio_history(GetPortfolioHistoryRequest(period="1A", timeframe="5Min"))  # > 30 days
    assert err.value.status_code == 422
