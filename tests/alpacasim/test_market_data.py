from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.requests import (
    StockBarsRequest,
    StockLatestBarRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
    StockSnapshotRequest,
)
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from .conftest import LIVE_KEY, LIVE_SECRET, stock_client

START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday; bars never lie in the future


def test_latest_quotes_follow_overrides(sim, stocks):
    sim.set_price("AAPL", 123.45)
    sim.set_price("MSFT", 300, bid=299.5, ask=300.25)
    quotes = stocks.get_stock_latest_quote(
        StockLatestQuoteRequest(symbol_or_symbols=["AAPL", "MSFT", "NVDA"])
    )
    assert quotes["AAPL"].bid_price == 123.44 and quotes["AAPL"].ask_price == 123.46
    assert quotes["MSFT"].bid_price == 299.5 and quotes["MSFT"].ask_price == 300.25
    nvda = quotes["NVDA"]
    assert 0 < nvda.bid_price < nvda.ask_price and nvda.bid_size > 0
    assert abs(nvda.timestamp - datetime.now(UTC)) < timedelta(seconds=5)
    sim.clear_price("AAPL")
    assert (
        stocks.get_stock_latest_quote(
            StockLatestQuoteRequest(symbol_or_symbols="AAPL")
        )["AAPL"].bid_price
        != 123.44
    )


def test_latest_trades_and_bars(sim, stocks):
    sim.set_price("AAPL", 150)
    trades = stocks.get_stock_latest_trade(
        StockLatestTradeRequest(symbol_or_symbols=["AAPL"])
    )
    assert trades["AAPL"].price == 150 and trades["AAPL"].size > 0
    bars = stocks.get_stock_latest_bar(
        StockLatestBarRequest(symbol_or_symbols=["AAPL", "MSFT"])
    )
    assert set(bars) == {"AAPL", "MSFT"} and bars["MSFT"].trade_count is not None


def test_snapshots(sim, stocks):
    sim.set_price("AAPL", 150)
    snaps = stocks.get_stock_snapshot(
        StockSnapshotRequest(symbol_or_symbols=["AAPL", "SPY"])
    )
    aapl = snaps["AAPL"]
    assert aapl.latest_trade.price == 150 and aapl.latest_quote.bid_price == 149.99
    assert (
        aapl.daily_bar.high >= aapl.daily_bar.low
        and aapl.previous_daily_bar.timestamp < aapl.daily_bar.timestamp
    )
    assert aapl.minute_bar.vwap is not None and snaps["SPY"].latest_quote.ask_price > 0


def test_data_accepts_any_valid_key_and_refuses_bad_ones(sim):
    live = stock_client(sim, LIVE_KEY, LIVE_SECRET)
    assert (
        live.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))[
            "AAPL"
        ].ask_price
        > 0
    )
    with pytest.raises(APIError) as err:
        stock_client(sim, LIVE_KEY, "nope").get_stock_latest_quote(
            StockLatestQuoteRequest(symbol_or_symbols="AAPL")
        )
    assert err.value.status_code == 401


@pytest.mark.parametrize(
    ("timeframe", "end", "expected", "spacing"),
    [
        (TimeFrame.Minute, START + timedelta(hours=10), 61, timedelta(minutes=1)),
        (
            TimeFrame(5, TimeFrameUnit.Minute),
            START + timedelta(hours=10),
            13,
            timedelta(minutes=5),
        ),
        (
            TimeFrame(15, TimeFrameUnit.Minute),
            START + timedelta(hours=10),
            5,
            timedelta(minutes=15),
        ),
        (TimeFrame.Hour, START + timedelta(hours=24), 16, timedelta(hours=1)),
        (TimeFrame.Day, START + timedelta(days=14), 9, None),  # 2025-01-09 closed (mourning)
        (TimeFrame.Week, START + timedelta(days=28), 4, timedelta(days=7)),
        (TimeFrame.Month, START + timedelta(days=100), 3, None),
    ],
)
def test_bars_timeframes(stocks, timeframe, end, expected, spacing):
    start = (
        START + timedelta(hours=9)
        if timeframe.unit_value in (TimeFrameUnit.Minute,)
        else START
    )
    bars = stocks.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="AAPL", timeframe=timeframe, start=start, end=end
        )
    )
    got = bars["AAPL"]
    assert len(got) == expected, [b.timestamp for b in got]
    for bar in got:
        assert (
            bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        )
        assert bar.volume > 0 and bar.trade_count > 0 and bar.vwap > 0
    if spacing:
        assert all(b.timestamp - a.timestamp == spacing for a, b in pairwise(got))


def test_daily_bars_skip_weekends(stocks):
    bars = stocks.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="AAPL",
            timeframe=TimeFrame.Day,
            start=START,
            end=START + timedelta(days=13),
        )
    )["AAPL"]
    assert all(
        b.timestamp.astimezone(timezone(timedelta(hours=-5))).weekday() < 5
        for b in bars
    )


def test_bars_limit_and_raw_pagination(sim, stocks):
    req = StockBarsRequest(
        symbol_or_symbols=["AAPL", "MSFT"],
        timeframe=TimeFrame.Minute,
        start=START + timedelta(hours=14),
        limit=150,
    )
    bars = stocks.get_stock_bars(req)
    assert sum(len(v) for v in bars.data.values()) == 150
    assert len(bars["AAPL"]) == 150  # symbols in order, then time
    page = stocks.get("/stocks/bars", {"symbols": "AAPL,MSFT", "timeframe": "1Hour", "start": "2025-01-06T00:00:00Z",
                                       "end": "2025-01-06T23:59:00Z", "limit": 10})  # fmt: skip
    assert len(page["bars"]["AAPL"]) == 10 and page["next_page_token"]
    seen = page["bars"]["AAPL"]
    while page["next_page_token"]:
        page = stocks.get("/stocks/bars", {"symbols": "AAPL,MSFT", "timeframe": "1Hour", "start": "2025-01-06T00:00:00Z",
                                           "end": "2025-01-06T23:59:00Z", "limit": 10, "page_token": page["next_page_token"]})  # fmt: skip
        seen += page["bars"].get("AAPL", [])
    whole = stocks.get("/stocks/bars", {"symbols": "AAPL", "timeframe": "1Hour", "start": "2025-01-06T00:00:00Z",
                                        "end": "2025-01-06T23:59:00Z"})["bars"]["AAPL"]  # fmt: skip
    assert seen == whole and len(whole) == 15  # 04:00-18:00 New York


def test_bad_timeframe_and_symbol_are_400(stocks):
    with pytest.raises(APIError) as err:
        stocks.get("/stocks/bars", {"symbols": "AAPL", "timeframe": "7Fortnight"})
    assert err.value.status_code == 400
    with pytest.raises(APIError) as err:
        stocks.get("/stocks/quotes/latest", {"symbols": "AA PL!"})
    assert err.value.status_code == 400


def test_single_symbol_routes(stocks):
    assert stocks.get("/stocks/AAPL/quotes/latest")["quote"]["ap"] > 0
    assert stocks.get("/stocks/AAPL/trades/latest")["trade"]["p"] > 0
    assert stocks.get("/stocks/AAPL/snapshot")["latestQuote"]["bp"] > 0
    one = stocks.get(
        "/stocks/AAPL/bars",
        {"timeframe": "1Day", "start": "2025-01-06", "end": "2025-01-10"},
    )
    assert one["symbol"] == "AAPL" and len(one["bars"]) == 4


def test_coarse_bars_aggregate_the_finer_ones(stocks):
    def bars(timeframe, start, end):
        req = StockBarsRequest(symbol_or_symbols="AAPL", timeframe=timeframe, start=start, end=end)
        return stocks.get_stock_bars(req)["AAPL"]

    def agrees(coarse, fine):
        assert coarse.open == fine[0].open and coarse.close == fine[-1].close
        assert coarse.high == max(b.high for b in fine) and coarse.low == min(b.low for b in fine)
        assert coarse.volume == sum(b.volume for b in fine)

    t0 = START + timedelta(hours=15)  # 10:00 New York
    (ten,) = bars(TimeFrame(10, TimeFrameUnit.Minute), t0, t0 + timedelta(minutes=9))
    agrees(ten, bars(TimeFrame.Minute, t0, t0 + timedelta(minutes=9)))
    # the week of 2025-01-06 has four trading days (the 9th was a day of mourning)
    (week,) = bars(TimeFrame.Week, START, START + timedelta(days=4))
    days = bars(TimeFrame.Day, START, START + timedelta(days=6))
    assert len(days) == 4
    agrees(week, days)


def _all_pages(client, path: str, key: str, **params) -> dict[str, list]:
    out: dict[str, list] = {}
    token = None
    while True:
        page = client.get(path, {**params, **({"page_token": token} if token else {})})
        for symbol, items in page[key].items():
            out.setdefault(symbol, []).extend(items)
        token = page.get("next_page_token")
        if not token:
            return out


@pytest.mark.parametrize(("path", "key", "timeframe"), [
    ("/stocks/bars", "bars", "1Hour"), ("/stocks/bars", "bars", "15Min"), ("/stocks/bars", "bars", "1Day"),
    ("/stocks/quotes", "quotes", None), ("/stocks/trades", "trades", None),
])  # fmt: skip
def test_sort_desc_pages_are_newest_first_across_pages(stocks, path, key, timeframe):
    params = {"symbols": "AAPL,MSFT", "start": "2025-01-03T20:59:50-05:00", "end": "2025-01-10T04:00:10-05:00", "limit": 3}
    if timeframe:
        params["timeframe"] = timeframe
    if key != "bars":  # one tick per second: a short window around the weekend and the 2025-01-09 closure
        params.update(start="2025-01-03T19:59:50-05:00", end="2025-01-06T04:00:05-05:00")
    asc = _all_pages(stocks, path, key, **params)
    desc = _all_pages(stocks, path, key, **params, sort="desc")
    assert set(desc) == {"AAPL", "MSFT"} and len(asc["AAPL"]) > 3  # more than one page per symbol
    assert {s: list(reversed(v)) for s, v in asc.items()} == desc
    first = stocks.get(path, {**params, "sort": "desc"})[key]["AAPL"]
    assert first == desc["AAPL"][:3]  # the first page holds the newest
