"""Market-data streams, driven by alpaca-py's StockDataStream and OptionDataStream over real WebSockets."""

from datetime import UTC, datetime

import pytest
from alpaca.data.enums import DataFeed
from alpaca.data.models import Bar, Quote, Trade
from alpaca.data.requests import (
    OptionLatestQuoteRequest,
    StockBarsRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
)
from alpaca.data.timeframe import TimeFrame

from tests.alpacasim.conftest import PAPER2_KEY, PAPER2_SECRET
from tests.helpers.sim_streams import connections, wait_for

FIXED = "2030-03-04T15:00:00Z"  # a Monday, 10:00 in New York
OPTION = "AAPL300315C00190000"


def _configure(sim, **body) -> dict:
    return sim.control("POST", "/_sim/streams/config", body)


def test_quotes_and_trades_agree_with_rest(sim, streams, stocks):
    sim.set_clock(now=FIXED)
    runner = streams()
    runner.client.subscribe_quotes(runner.handler, "AAPL")
    runner.client.subscribe_trades(runner.handler, "AAPL")
    runner.start()
    quote = runner.data(lambda i: isinstance(i, Quote))
    trade = runner.data(lambda i: isinstance(i, Trade))
    rest_q = stocks.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))["AAPL"]
    rest_t = stocks.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert quote.symbol == "AAPL" and trade.symbol == "AAPL"
    assert (quote.bid_price, quote.ask_price, quote.bid_size, quote.ask_size) == (
        rest_q.bid_price,
        rest_q.ask_price,
        rest_q.bid_size,
        rest_q.ask_size,
    )
    assert quote.bid_price < quote.ask_price
    assert trade.price == rest_t.price and trade.size == rest_t.size
    assert quote.timestamp == rest_q.timestamp == datetime(2030, 3, 4, 15, tzinfo=UTC)
    assert connections(sim) == {"v2/iex": 1}


def test_price_override_reaches_the_stream(sim, streams):
    runner = streams()
    runner.client.subscribe_quotes(runner.handler, "MSFT")
    runner.start()
    runner.data(lambda i: isinstance(i, Quote))
    sim.set_price("MSFT", 123.45)
    quote = runner.data(lambda i: isinstance(i, Quote) and i.ask_price == 123.46, timeout=10)
    assert quote.bid_price == 123.44


def test_unsubscribe_stops_that_symbol_only(sim, streams):
    _configure(sim, tick_rate=20)
    runner = streams()
    runner.client.subscribe_quotes(runner.handler, "AAPL", "MSFT")
    runner.start()
    runner.data(lambda i: i.symbol == "AAPL")
    runner.data(lambda i: i.symbol == "MSFT")
    runner.client.unsubscribe_quotes("AAPL")
    # the echo is the boundary: every frame after it follows the new subscription
    runner.log("subscribed to quotes: ['MSFT']")
    later = runner.collect_until(lambda k, i: k == "data" and i.symbol == "MSFT")
    later += [("data", runner.data(lambda i: i.symbol == "MSFT")) for _ in range(10)]
    assert all(i.symbol == "MSFT" for k, i in later if k == "data")


def test_tick_rate_per_symbol(sim, streams):
    """200 messages/s for AAPL: 200 quotes arrive well within a deadline the default 1/s could not meet."""
    _configure(sim, tick_rates={"AAPL": 200})
    runner = streams()
    runner.client.subscribe_quotes(runner.handler, "AAPL")
    runner.start()
    for _ in range(200):
        runner.data(lambda i: i.symbol == "AAPL", timeout=10)
    assert sim.control("GET", "/_sim/streams")["tick_rates"] == {"AAPL": 200.0}


def test_minute_bars_and_daily_bars_agree_with_rest(sim, streams, stocks):
    sim.set_clock(now=FIXED)
    runner = streams()
    runner.client.subscribe_bars(runner.handler, "SPY")
    runner.client.subscribe_daily_bars(runner.handler, "SPY")
    runner.start()
    runner.log("subscribed to")
    sim.set_clock(advance_seconds=60)  # the simulated clock enters 15:01: the 15:00 bar is done
    bar = runner.data(lambda i: isinstance(i, Bar) and i.timestamp == datetime(2030, 3, 4, 15, tzinfo=UTC))
    rest = stocks.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="SPY",
            timeframe=TimeFrame.Minute,
            start=datetime(2030, 3, 4, 15, tzinfo=UTC),
            end=datetime(2030, 3, 4, 15, 0, 59, tzinfo=UTC),
        )
    )["SPY"][0]
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (rest.open, rest.high, rest.low, rest.close, rest.volume)
    daily = runner.data(lambda i: isinstance(i, Bar) and i.timestamp.date() == datetime(2030, 3, 4).date())
    assert daily.timestamp.astimezone(UTC) == datetime(2030, 3, 4, 5, tzinfo=UTC)  # midnight New York


def test_option_quotes_agree_with_rest(sim, streams, options):
    sim.set_clock(now=FIXED)
    runner = streams("option")
    runner.client.subscribe_quotes(runner.handler, OPTION)
    runner.client.subscribe_trades(runner.handler, OPTION)
    runner.start()
    quote = runner.data(lambda i: isinstance(i, Quote))
    trade = runner.data(lambda i: isinstance(i, Trade))
    rest = options.get_option_latest_quote(OptionLatestQuoteRequest(symbol_or_symbols=OPTION))[OPTION]
    assert quote.symbol == OPTION and (quote.bid_price, quote.ask_price) == (rest.bid_price, rest.ask_price)
    assert quote.bid_price < trade.price < quote.ask_price or trade.price == pytest.approx((quote.bid_price + quote.ask_price) / 2, abs=0.02)
    assert connections(sim) == {"v1beta1/indicative": 1}


def test_second_connection_same_key_and_feed_gets_406(sim, streams):
    first = streams()
    first.client.subscribe_quotes(first.handler, "AAPL")
    first.start()
    first.data()
    second = streams()
    second.client.subscribe_quotes(second.handler, "AAPL")
    second.start()
    second.log("connection limit exceeded")
    state = sim.control("GET", "/_sim/streams")
    assert state["authenticated"]["v2/iex"] == {"PKDEMO0000000000001": 1}
    first.data()  # the first connection is untouched
    # another key on the feed, or the same key on another feed, is a different connection slot
    other_key = streams(key=PAPER2_KEY, secret=PAPER2_SECRET)
    other_key.client.subscribe_quotes(other_key.handler, "AAPL")
    other_key.start()
    other_key.data()
    sip = streams(feed=DataFeed.SIP, path="/v2/sip")
    sip.client.subscribe_quotes(sip.handler, "AAPL")
    sip.start()
    sip.data()
    second.stop()
    wait_for(lambda: connections(sim) == {"v2/iex": 2, "v2/sip": 1}, what="one connection per key and feed")


def test_bad_secret_gets_402(sim, streams):
    runner = streams(secret="wrong-secret")
    runner.client.subscribe_quotes(runner.handler, "AAPL")
    runner.start()
    runner.log("auth failed")
    assert "v2/iex" not in sim.control("GET", "/_sim/streams")["authenticated"]


def test_symbol_limit_gets_405_and_keeps_the_subscription(sim, streams):
    _configure(sim, symbol_limit=2)
    runner = streams()
    runner.client.subscribe_quotes(runner.handler, "AAPL", "MSFT")
    runner.start()
    runner.log("subscribed to quotes: ['AAPL', 'MSFT']")
    runner.client.subscribe_quotes(runner.handler, "SPY")
    runner.log("symbol limit exceeded (405)")
    runner.data(lambda i: i.symbol == "AAPL")


def test_trading_status_from_the_control_api(sim, streams):
    from alpaca.data.models import TradingStatus

    runner = streams()
    runner.client.subscribe_trading_statuses(runner.handler, "AAPL")
    runner.start()
    runner.log("subscribed to statuses: ['AAPL']")
    sent = sim.control("POST", "/_sim/streams/status", {"symbol": "AAPL", "status_code": "H", "status_message": "Trading Halt"})
    assert sent == {"sent_to": 1}
    status = runner.data(lambda i: isinstance(i, TradingStatus))
    assert (status.symbol, status.status_code, status.status_message) == ("AAPL", "H", "Trading Halt")
    assert sim.control("POST", "/_sim/streams/status", {"symbol": "MSFT"}) == {"sent_to": 0}
