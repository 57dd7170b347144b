import functools

import pytest
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.trading.client import TradingClient

from tests.helpers.sim_streams import streams  # noqa: F401  (fixture)

PAPER_KEY, PAPER_SECRET = "PKDEMO0000000000001", "demo-secret-0000000001"
PAPER2_KEY, PAPER2_SECRET = "PKDEMO0000000000002", "demo-secret-0000000002"
LOW_CASH_KEY, LOW_CASH_SECRET = "PKDEMO0000000000003", "demo-secret-0000000003"
LIVE_KEY, LIVE_SECRET = "AKDEMO0000000000004", "demo-secret-0000000004"


def cash_account(sim, key: str = PAPER_KEY) -> None:
    """Make a demo account (margin, multiplier 2, in alpacasim/demo.yml) a cash account: buying power is
    the cash less what open buys hold, and no short sales."""
    sim.upsert_account(key, multiplier=1)


def no_retry(client, timeout: float = 10.0):
    """alpaca-py retries 429/504 with 3 s sleeps and sets no HTTP timeout: disable both for tests."""
    client._retry = 0
    client._session.request = functools.partial(
        client._session.request, timeout=timeout
    )
    return client


def trading_client(
    server, key=PAPER_KEY, secret=PAPER_SECRET, paper=True, timeout=10.0
) -> TradingClient:
    url = server.paper_url if paper else server.live_url
    return no_retry(TradingClient(key, secret, paper=paper, url_override=url), timeout)


def stock_client(
    server, key=PAPER_KEY, secret=PAPER_SECRET, timeout=10.0
) -> StockHistoricalDataClient:
    return no_retry(
        StockHistoricalDataClient(key, secret, url_override=server.data_url), timeout
    )


def option_client(
    server, key=PAPER_KEY, secret=PAPER_SECRET, timeout=10.0
) -> OptionHistoricalDataClient:
    return no_retry(
        OptionHistoricalDataClient(key, secret, url_override=server.data_url), timeout
    )


@pytest.fixture
def trading(sim):
    return trading_client(sim)


@pytest.fixture
def stocks(sim):
    return stock_client(sim)


@pytest.fixture
def options(sim):
    return option_client(sim)
