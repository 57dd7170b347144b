"""A streamed quote served from the last-value cache costs one round trip to Redis: the throttle's, which
reads the value in its pipeline (trading/quote_source.py, trading/throttles.py). A spy counts what the
request's thread writes to Redis (a write is a round trip; a pipeline is one write). No upstream call.
On embedded defaults there is no Redis: zero round trips, the same answer."""
from __future__ import annotations

import threading
import time

import pytest
from django.conf import settings
from redis.connection import AbstractConnection

from accounts import window_lease
from opitios import lastvalue
from risk import states as risk_states
from trading import throttles

from .conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def round_trips(monkeypatch):
    sent: list[bytes] = []
    real = AbstractConnection.send_packed_command
    me = threading.get_ident()

    def spy(self, command, check_health=True):
        if threading.get_ident() == me:
            sent.append(b"".join(command) if isinstance(command, list | tuple) else command)
        return real(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", spy)
    return sent


def streamed(symbol: str, bid: float) -> None:
    lastvalue.put(lastvalue.key("q", symbol), {"bid": bid, "ask": bid + 0.02, "bid_size": 1, "ask_size": 2,
                                               "timestamp": "2026-01-02T15:00:00Z", "received_at": time.time()})


def test_a_cached_quote_costs_one_round_trip_and_no_upstream_call(config_file, demo_accounts, world, round_trips):
    config_file.set("market_data", max_quote_age_ms=60_000)
    streamed("AAPL", 190.5)
    client = client_for()
    assert client.get("/api/v1/stocks/AAPL/quote").status_code == 200  # warm: config, connections
    round_trips.clear()
    for i in range(20):
        streamed("AAPL", 190.5 + i)  # the hub's write (outside the count)
        sent_before = len(round_trips)
        r = client.get("/api/v1/stocks/AAPL/quote")
        body = r.json()
        assert r.status_code == 200 and body["source"] == "stream" and body["bid"] == str(190.5 + i), body
        if settings.REDIS_URL:
            # the hub's write above used its own round trip; the request made exactly one
            assert len(round_trips) - sent_before == 1, round_trips[sent_before:]
            assert b"throttle:stock_quote" in round_trips[-1] and b"md:lv:q:AAPL" in round_trips[-1]
        round_trips.clear()
    assert not [c for c in world.calls if c[1] == "stock_quotes"], "a cached quote must not call upstream"


def test_a_quote_not_streamed_falls_back_to_rest_with_its_throttle_round_trip(config_file, demo_accounts, world, round_trips):
    r = client_for().get("/api/v1/stocks/MSFT/quote")
    assert r.status_code == 200 and r.json()["source"] == "rest"
    assert [c for c in world.calls if c[1] == "stock_quotes"]
    if settings.REDIS_URL:
        assert len(round_trips) == 1  # the throttle's, which found no streamed value: no second read


def test_the_throttle_still_refuses_when_the_quote_rides_along(config_file, demo_accounts, world):
    config_file.set("rate_limits", stock_quote="3/min")
    config_file.set("market_data", max_quote_age_ms=60_000)
    streamed("AAPL", 100)
    client = client_for()
    codes = [client.get("/api/v1/stocks/AAPL/quote").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_a_value_read_again_keeps_its_age_per_request_and_goes_stale(config_file, demo_accounts, world):
    """The decoded value is memoized per process (trading/quote_source.py): the same cached value read again
    gives the same fields, an age of this request, and is refused once older than max_quote_age_ms."""
    config_file.set("market_data", max_quote_age_ms=60_000)
    received = time.time() - 0.5
    lastvalue.put(lastvalue.key("q", "AAPL"), {"bid": 190.1, "ask": 190.12, "bid_size": 3, "ask_size": 5,
                                               "timestamp": "2026-01-02T15:00:00.123456Z", "received_at": received})
    client = client_for()
    first = client.get("/api/v1/stocks/AAPL/quote").json()
    assert first == {"symbol": "AAPL", "bid": "190.1", "ask": "190.12", "bid_size": "3", "ask_size": "5",
                     "timestamp": "2026-01-02T15:00:00.123456Z", "source": "stream", "age_ms": first["age_ms"]}
    assert 500 <= first["age_ms"] < 60_000
    deadline = time.monotonic() + 5
    while True:  # the same value, read again once the clock has moved on by a millisecond
        second = client.get("/api/v1/stocks/AAPL/quote").json()
        if second["age_ms"] > first["age_ms"] or time.monotonic() > deadline:
            break
    assert second["age_ms"] > first["age_ms"]
    assert {k: v for k, v in second.items() if k != "age_ms"} == {k: v for k, v in first.items() if k != "age_ms"}
    batch = client.post("/api/v1/stocks/quotes/batch", {"symbols": ["AAPL"]}, format="json").json()["results"][0]["quote"]
    assert {k: v for k, v in batch.items() if k != "age_ms"} == {k: v for k, v in first.items() if k != "age_ms"}
    config_file.set("market_data", max_quote_age_ms=400)  # the memoized value is now too old: REST answers
    stale = client.get("/api/v1/stocks/AAPL/quote").json()
    assert stale["source"] == "rest"


def test_a_client_with_a_high_limit_shares_a_round_trip_among_many_quotes(config_file, demo_accounts, world, round_trips,
                                                                          monkeypatch):
    """From 20,000 a minute on, the quote's throttle counts in leases (accounts/window_lease.py): a round trip
    counts 50 quotes at once and what it read along (the streamed value) serves the next ones while fresh."""
    monkeypatch.setattr(window_lease, "READ_REUSE_S", 60.0)  # a slow test machine still reuses the value
    monkeypatch.setattr(window_lease, "leases", window_lease.Leases())
    monkeypatch.setattr(throttles, "leases", window_lease.leases)
    config_file.set("rate_limits", stock_quote="500000/min")
    config_file.set("market_data", max_quote_age_ms=60_000)
    streamed("AAPL", 190.5)
    client = client_for()
    first = client.get("/api/v1/stocks/AAPL/quote")  # counts 50, serves 1
    round_trips.clear()
    answers = [first, *(client.get("/api/v1/stocks/AAPL/quote") for _ in range(49))]
    assert all(r.status_code == 200 and r.json()["source"] == "stream" for r in answers)
    assert [int(r["X-RateLimit-Remaining"]) for r in answers[:2]] == [499_999, 499_998]
    if settings.REDIS_URL:
        assert not round_trips, round_trips
    streamed("AAPL", 191.5)  # the lease is spent: the next quote's round trip counts again and reads the new value
    round_trips.clear()
    assert client.get("/api/v1/stocks/AAPL/quote").json()["bid"] == "191.5"
    if settings.REDIS_URL:
        assert len(round_trips) == 1, round_trips
    assert not [c for c in world.calls if c[1] == "stock_quotes"]


def test_a_leased_quote_never_reports_a_trading_state_version(config_file, demo_accounts, world, monkeypatch):
    """A leased read may be 25 ms old: if it fed risk/states.py's "version seen now", an order in the same process
    could trust it and miss a kill switch set in between. Only a round trip made for this request reports it."""
    monkeypatch.setattr(window_lease, "leases", window_lease.Leases())
    monkeypatch.setattr(throttles, "leases", window_lease.leases)
    config_file.set("rate_limits", stock_quote="500000/min")
    config_file.set("market_data", max_quote_age_ms=60_000)
    streamed("AAPL", 190.5)
    seen = []
    monkeypatch.setattr(risk_states, "version_seen", lambda value: seen.append(value))
    client = client_for()
    assert all(client.get("/api/v1/stocks/AAPL/quote").status_code == 200 for _ in range(3))
    assert seen == [], seen
    config_file.set("rate_limits", stock_quote="60/min")  # no lease: the round trip's fresh version is reported
    r = client.get("/api/v1/stocks/AAPL/quote")
    assert r.status_code == 200 and r["X-RateLimit-Limit"] == "60", r.headers
    assert len(seen) == 1 and seen[0] is not None, seen
