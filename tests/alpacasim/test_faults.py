import time

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.requests import StockLatestQuoteRequest
from alpaca.trading.requests import MarketOrderRequest

from tests.helpers.sim import SimServer

from .conftest import PAPER_KEY, PAPER_SECRET, stock_client, trading_client

HEADERS = {"APCA-API-KEY-ID": PAPER_KEY, "APCA-API-SECRET-KEY": PAPER_SECRET}


def order():
    return MarketOrderRequest(symbol="AAPL", qty=1, side="buy", time_in_force="day")


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, 50010000), (503, 50310000), (504, 50410000), (429, 42910000)],
)
def test_status_faults_on_order_submission(sim, trading, status, code):
    sim.set_fault("orders", status=status)
    with pytest.raises(APIError) as err:
        trading.submit_order(order())
    assert err.value.status_code == status and err.value.code == code
    assert trading.get_orders() == []  # nothing was placed; other routes are untouched
    assert trading.get_account().cash is not None
    sim.clear_faults()
    assert trading.submit_order(order()).status == "filled"


def test_injected_429_has_rate_limit_headers(sim):
    sim.set_fault("account", status=429)
    resp = requests.get(f"{sim.paper_url}/v2/account", headers=HEADERS, timeout=5)
    assert resp.status_code == 429
    assert (
        resp.headers["X-Ratelimit-Remaining"] == "0" and "Retry-After" in resp.headers
    )


def test_count_based_faults_expire(sim, trading):
    sim.set_fault("account", status=503, count=2)
    for _ in range(2):
        with pytest.raises(APIError) as err:
            trading.get_account()
        assert err.value.status_code == 503
    assert trading.get_account().status == "ACTIVE"


def test_rate_based_faults_hit_a_share(sim, trading):
    sim.set_fault("clock", status=500, rate=0.5)
    failures = 0
    for _ in range(200):
        try:
            trading.get_clock()
        except APIError as err:
            assert err.status_code == 500
            failures += 1
    assert 60 < failures < 140


def test_wildcard_fault_hits_data_routes(sim, stocks):
    sim.set_fault("*", status=500)
    with pytest.raises(APIError) as err:
        stocks.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))
    assert err.value.status_code == 500
    assert (
        sim.state()["faults"]["*"]["status"] == 500
    )  # the control API is never faulted


def test_hang_makes_the_client_time_out(sim):
    sim.set_fault("orders", hang=True)
    client = trading_client(sim, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        client.submit_order(order())
    assert 0.4 < time.monotonic() - started < 3
    sim.clear_faults()  # releases the hung request
    assert client.submit_order(order()).status == "filled"


def test_latency_injection_per_route(sim, trading):
    """Injected delays are lower bounds; the upper bounds leave a busy machine a second or more of slack and
    only tell an injected delay from none."""
    sim.set_latency(1500, route="account")
    started = time.monotonic()
    trading.get_account()
    assert time.monotonic() - started >= 1.49
    started = time.monotonic()
    trading.get_clock()
    assert time.monotonic() - started < 1.0  # another route: not delayed
    sim.set_latency(distribution={"type": "uniform", "min": 1000, "max": 1200})
    started = time.monotonic()
    trading.get_clock()
    assert 0.99 < time.monotonic() - started < 2.5
    sim.control("POST", "/_sim/latency/clear", {})
    started = time.monotonic()
    trading.get_account()
    assert time.monotonic() - started < 1.0


@pytest.fixture(scope="module")
def limited():
    with SimServer(rate_limit=5) as server:
        yield server


def test_rate_limit_429_with_headers(limited):
    headers = {
        "APCA-API-KEY-ID": "PKDEMO0000000000002",
        "APCA-API-SECRET-KEY": "demo-secret-0000000002",
    }
    seen = []
    for _ in range(5):
        resp = requests.get(f"{limited.paper_url}/v2/clock", headers=headers, timeout=5)
        assert resp.status_code == 200
        seen.append(int(resp.headers["X-Ratelimit-Remaining"]))
        assert resp.headers["X-Ratelimit-Limit"] == "5"
        assert int(resp.headers["X-Ratelimit-Reset"]) > time.time()
    assert seen == [4, 3, 2, 1, 0]
    client = trading_client(limited, "PKDEMO0000000000002", "demo-secret-0000000002")
    with pytest.raises(APIError) as err:
        client.get_clock()
    assert err.value.status_code == 429 and err.value.code == 42910000
    resp = err.value.response
    assert (
        resp.headers["X-Ratelimit-Remaining"] == "0"
        and int(resp.headers["Retry-After"]) >= 1
    )
    # the budget is per key: another key still has its own
    assert stock_client(limited).get_stock_latest_quote(
        StockLatestQuoteRequest(symbol_or_symbols="AAPL")
    )


def test_rate_limit_applies_to_the_data_routes_too(limited):
    client = stock_client(limited, "PKDEMO0000000000003", "demo-secret-0000000003")
    for _ in range(5):
        client.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))
    with pytest.raises(APIError) as err:
        client.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))
    assert err.value.status_code == 429


def test_state_counts_api_requests_by_route_until_reset(sim):
    """bench/hub_fanout.py reads these counters to prove streamed quotes cost no upstream REST call."""
    before = sim.state().get("requests", {})
    for _ in range(3):
        resp = requests.get(f"{sim.data_url}/v2/stocks/quotes/latest?symbols=AAPL", headers=HEADERS, timeout=5)
        assert resp.status_code == 200
    requests.get(f"{sim.paper_url}/v2/account", headers=HEADERS, timeout=5).raise_for_status()
    after = sim.state()["requests"]
    grown = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert sum(grown.values()) == 4 and 3 in grown.values(), grown
    sim.control("POST", "/_sim/reset")
    assert sim.state()["requests"] == {}
