"""Same seed, same prices; another seed, other prices. Also the server-side options of those servers."""

import pytest
from alpaca.data.requests import (
    OptionLatestQuoteRequest,
    StockBarsRequest,
    StockLatestQuoteRequest,
)
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.requests import LimitOrderRequest

from alpacasim.accounts import generated_credentials
from tests.helpers.sim import SimServer

from .conftest import option_client, stock_client, trading_client

NOW = "2026-03-04T15:00:00Z"


@pytest.fixture(scope="module")
def servers():
    a = SimServer(config=None, accounts=3, seed=7, extra_args=["--bars-page-max", "10"])
    b = SimServer(config=None, accounts=3, seed=7)
    c = SimServer(
        config=None, accounts=3, seed=8, extra_args=["--partial-fill-rate", "1.0", "--clock", "open"]
    )
    try:
        for s in (a, b, c):
            s.start()
        yield a, b, c
    finally:
        for s in (a, b, c):
            s.stop()


def _key(i=1):
    return generated_credentials(i)


def _quotes(server):
    server.reset()
    server.set_clock(now=NOW)
    client = stock_client(server, *_key())
    q = client.get_stock_latest_quote(
        StockLatestQuoteRequest(symbol_or_symbols=["AAPL", "MSFT", "ZZZ"])
    )
    opt = option_client(server, *_key()).get_option_latest_quote(
        OptionLatestQuoteRequest(symbol_or_symbols="AAPL270115C00190000")
    )
    return {s: (v.bid_price, v.ask_price) for s, v in q.items()}, opt[
        "AAPL270115C00190000"
    ].ask_price


def _bars(server):
    req = StockBarsRequest(
        symbol_or_symbols=["AAPL"],
        timeframe=TimeFrame.Hour,
        start="2025-02-03",
        end="2025-02-05",
    )
    return [
        (b.timestamp, b.open, b.close)
        for b in stock_client(server, *_key()).get_stock_bars(req)["AAPL"]
    ]


def test_generated_credentials():
    assert generated_credentials(1) == ("PKSIM0000000001", "simsecret0000000001")
    assert generated_credentials(12) == ("PKSIM0000000012", "simsecret0000000012")


def test_generated_accounts_are_paper_and_deterministic(servers):
    a, b, _ = servers
    acct_a = trading_client(a, *_key(3)).get_account()
    acct_b = trading_client(b, *_key(3)).get_account()
    assert (
        acct_a.account_number == acct_b.account_number
        and acct_a.account_number.startswith("PA")
    )
    assert acct_a.id == acct_b.id


def test_same_seed_same_prices(servers):
    a, b, _ = servers
    assert _quotes(a) == _quotes(b)
    assert _bars(a) == _bars(b)


def test_other_seed_other_prices(servers):
    a, _, c = servers
    assert _quotes(a) != _quotes(c)
    assert _bars(a) != _bars(c)


def test_prices_walk_with_time(servers):
    a = servers[0]
    client = stock_client(a, *_key())
    a.set_clock(now=NOW)
    first = client.get_stock_latest_quote(
        StockLatestQuoteRequest(symbol_or_symbols="AAPL")
    )["AAPL"].ask_price
    a.set_clock(now="2026-03-05T15:00:00Z")
    later = client.get_stock_latest_quote(
        StockLatestQuoteRequest(symbol_or_symbols="AAPL")
    )["AAPL"].ask_price
    assert first != later and 0.5 < later / first < 1.5
    a.reset()


def test_pagination_across_small_pages(servers):
    """alpaca-py follows next_page_token until `limit` items: the server here caps pages at 10."""
    a, b, _ = servers
    req = StockBarsRequest(
        symbol_or_symbols=["AAPL", "MSFT"],
        timeframe=TimeFrame.Hour,
        start="2025-02-03",
        limit=45,
    )
    paged = stock_client(a, *_key()).get_stock_bars(req)
    whole = stock_client(b, *_key()).get_stock_bars(req)
    assert sum(len(v) for v in paged.data.values()) == 45
    assert paged.data == whole.data


def test_random_partial_fills(servers):
    c = servers[2]
    c.reset()
    c.set_price("AAPL", 100)
    client = trading_client(c, *_key())
    o = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL", qty=10, side="buy", time_in_force="day", limit_price=101
        )
    )
    assert o.status == "partially_filled" and float(o.filled_qty) == 5
    assert float(client.get_open_position("AAPL").qty) == 5
