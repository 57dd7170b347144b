"""The previous session's close on positions (lastday_price, change_today, intraday P&L), and the
portfolio history's intraday timeframes, on fixed clocks on the NYSE calendar, through alpaca-py.

Monday 2026-11-30: the previous session is Friday 27 November (an early close, 13:00 ET).
"""

from datetime import date, datetime
from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.requests import StockSnapshotRequest
from alpaca.trading.requests import GetPortfolioHistoryRequest

from .test_orders import market
from .test_sessions import NY, at


def _stamp(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=NY).timestamp())


def test_positions_carry_the_walks_previous_close(sim, trading, stocks):
    at(sim, "2026-11-30T11:00")
    trading.submit_order(market("AAPL", 10))  # at the walk's ask
    pos = trading.get_open_position("AAPL")
    snap = stocks.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert snap.previous_daily_bar.timestamp.astimezone(NY).date() == date(2026, 11, 27)
    lastday = Decimal(pos.lastday_price)
    assert lastday == Decimal(str(snap.previous_daily_bar.close))
    current = Decimal(pos.current_price)
    assert current != lastday  # the walk moved since Friday
    assert Decimal(pos.change_today) == ((current - lastday) / lastday).quantize(Decimal("0.0000001"))
    assert Decimal(pos.unrealized_intraday_pl) == (current - lastday) * 10
    sim.set_price("AAPL", 123)  # an override moves the current price, not Friday's close
    pos = trading.get_open_position("AAPL")
    assert Decimal(pos.current_price) == 123 and Decimal(pos.lastday_price) == lastday
    at(sim, "2026-12-01T10:00")  # Tuesday: Monday's close is the previous one
    snap = stocks.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert Decimal(trading.get_open_position("AAPL").lastday_price) == Decimal(str(snap.previous_daily_bar.close))


def test_intraday_portfolio_history_values_the_holdings_of_each_instant(sim, trading):
    at(sim, "2026-11-30T10:00")
    sim.set_price("AAPL", 100)
    trading.submit_order(market("AAPL", 10))  # at 100.01: cash 98,999.90, equity 99,999.90
    sim.set_clock(advance_seconds=3600)  # 11:00
    history = trading.get_portfolio_history(GetPortfolioHistoryRequest(period="1D", timeframe="15Min"))
    assert history.timeframe == "15Min"
    assert history.timestamp == [_stamp(f"2026-11-30T{t}") for t in
                                 ("09:30", "09:45", "10:00", "10:15", "10:30", "10:45", "11:00")]
    # each point is the equity at the end of its window: the buy at 10:00 ends the 09:45 one
    assert history.equity == [100000.0] + [99999.9] * 6
    assert history.base_value == 100000.0  # Friday's closing equity
    assert history.profit_loss[-1] == pytest.approx(-0.1)
    raw = trading.get("/account/portfolio/history", {"period": "1D", "timeframe": "1H"})
    assert raw["base_value_asof"] == "2026-11-27" and raw["timestamp"][0] == _stamp("2026-11-30T09:30")


def test_intraday_history_resets_the_pnl_each_day_and_reports_extended_hours(sim, trading):
    at(sim, "2026-11-30T10:00")
    sim.set_price("AAPL", 100)
    trading.submit_order(market("AAPL", 10))
    at(sim, "2026-12-01T10:00")
    sim.set_price("AAPL", 110)  # an override values every instant: 10 x 110 + 98,999.90
    history = trading.get_portfolio_history(GetPortfolioHistoryRequest(period="1W", timeframe="1H"))
    days = sorted({datetime.fromtimestamp(t, NY).date() for t in history.timestamp})
    assert days == [date(2026, 11, 25), date(2026, 11, 27), date(2026, 11, 30), date(2026, 12, 1)]  # 7 calendar days
    assert history.equity[-1] == pytest.approx(100099.9)
    # per_day: Tuesday's P&L is measured from Monday's close (valued at the pinned 110 too)
    assert history.profit_loss[-1] == pytest.approx(0.0)
    no_reset = trading.get("/account/portfolio/history", {"period": "1W", "timeframe": "1H", "pnl_reset": "no_reset"})
    assert no_reset["profit_loss"][-1] == pytest.approx(99.9)
    ext = trading.get("/account/portfolio/history",
                      {"period": "1D", "timeframe": "1H", "intraday_reporting": "extended_hours"})
    assert ext["timestamp"][:2] == [_stamp("2026-12-01T04:00"), _stamp("2026-12-01T05:00")]
    assert ext["timestamp"][-1] == _stamp("2026-12-01T10:00")
    default = trading.get("/account/portfolio/history", {"period": "1W"})
    assert default["timeframe"] == "15Min"  # Alpaca's default under 30 days
    for bad in ({"timeframe": "2H"}, {"period": "2M", "timeframe": "1H"}, {"period": "1D", "intraday_reporting": "x"}):
        with pytest.raises(APIError) as err:
            trading.get("/account/portfolio/history", bad)
        assert err.value.status_code == 422
