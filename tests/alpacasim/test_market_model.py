"""The pure pieces, without a server: OCC symbols, Black-Scholes, the walk, the clock."""

import math
from datetime import UTC, date, datetime
from itertools import pairwise

import pytest

from alpacasim.accounts import account_number_for, generated_credentials
from alpacasim.bars import parse_timeframe
from alpacasim.errors import SimError
from alpacasim.market import Market, MarketClock, black_scholes, occ_symbol, parse_occ
from alpacasim.nyse import session_at


def test_occ_round_trip():
    spec = parse_occ("AAPL260116C00190000")
    assert (spec.root, spec.expiration, spec.kind, spec.strike) == (
        "AAPL",
        date(2026, 1, 16),
        "call",
        190.0,
    )
    assert parse_occ("SPY270115P00412500").strike == 412.5
    assert occ_symbol("SPY", date(2027, 1, 15), "put", 412.5) == "SPY270115P00412500"
    for bad in (
        "AAPL",
        "AAPL261316C00190000",
        "AAPL260116X00190000",
        "AAPL260116C0019000",
    ):
        assert parse_occ(bad) is None


def test_black_scholes_put_call_parity_and_greeks():
    s, k, t, r, vol = 100.0, 105.0, 0.5, 0.04, 0.3
    call, put = (
        black_scholes("call", s, k, t, r, vol),
        black_scholes("put", s, k, t, r, vol),
    )
    assert math.isclose(
        call["price"] - put["price"], s - k * math.exp(-r * t), rel_tol=1e-9
    )
    assert math.isclose(call["delta"] - put["delta"], 1.0, rel_tol=1e-9)
    assert call["gamma"] == pytest.approx(put["gamma"]) and call[
        "vega"
    ] == pytest.approx(put["vega"])
    assert call["theta"] < 0 and call["rho"] > 0 > put["rho"]
    expired = black_scholes("call", 110, 100, 0, r, vol)
    assert expired["price"] == 10 and expired["delta"] == 1


def test_walk_is_a_pure_function_of_seed_symbol_and_time():
    clock = MarketClock()
    a, b, c = Market(1, clock), Market(1, clock), Market(2, clock)
    ts = 1_800_000_000
    assert a.price_at("AAPL", ts) == b.price_at("AAPL", ts)
    assert a.price_at("AAPL", ts) != c.price_at("AAPL", ts)
    assert a.price_at("AAPL", ts + 0.5) == a.price_at(
        "AAPL", ts
    )  # one step is one second
    daily = [a.price_at("AAPL", ts + d * 86400) for d in range(60)]
    moves = [abs(math.log(y / x)) for x, y in pairwise(daily)]
    assert 0.001 < sum(moves) / len(moves) < 0.08  # plausible daily moves


def test_clock_hours():
    assert session_at(datetime(2030, 1, 2, 15, 0, tzinfo=UTC)) == "regular"  # Wed 10:00 New York
    assert session_at(datetime(2030, 1, 2, 21, 1, tzinfo=UTC)) == "after_hours"  # 16:01
    assert session_at(datetime(2030, 1, 3, 1, 1, tzinfo=UTC)) == "closed"  # 20:01
    assert session_at(datetime(2030, 1, 2, 13, 0, tzinfo=UTC)) == "pre_market"  # 08:00
    assert session_at(datetime(2030, 1, 5, 15, 0, tzinfo=UTC)) == "closed"  # Saturday
    assert session_at(datetime(2026, 12, 25, 15, 0, tzinfo=UTC)) == "closed"  # Christmas
    assert session_at(datetime(2026, 11, 27, 18, 30, tzinfo=UTC)) == "after_hours"  # 13:30, early close
    clock = MarketClock("closed")
    assert clock.is_open() is False and MarketClock("open").is_open() is True


def test_timeframes():
    assert parse_timeframe("5Min") == (5, "Min") and parse_timeframe("1Hour") == (
        1,
        "Hour",
    )
    assert parse_timeframe("1Day") == (1, "Day") and parse_timeframe("15T") == (
        15,
        "Min",
    )
    for bad in ("0Min", "60Min", "2Day", "1Year", ""):
        with pytest.raises(SimError):
            parse_timeframe(bad)


def test_identities():
    assert generated_credentials(7) == ("PKSIM0000000007", "simsecret0000000007")
    paper = account_number_for("PKSIM0000000007", True)
    live = account_number_for("AKX", False)
    assert paper.startswith("PA") and len(paper) == 12 and paper[2:].isalnum()
    assert live.isdigit() and len(live) == 9


def test_the_holdings_timeline_is_bounded_and_keeps_the_state_it_folds_away():
    from decimal import Decimal

    from alpacasim.accounts import Account
    from alpacasim.broker import TIMELINE_MAX, Broker
    from alpacasim.config import AccountSpec

    broker = Broker(Market(1, MarketClock("open")), seed=1)
    acct = Account.from_spec(AccountSpec(api_key="K", secret_key="S"))
    for i in range(TIMELINE_MAX + 1):
        acct.cash = Decimal(i)
        broker.record_holdings(acct)
    assert len(acct.timeline) == TIMELINE_MAX // 2 + 1
    assert acct.timeline_base == (Decimal(TIMELINE_MAX // 2 - 1), {})  # the last state folded away
    assert acct.timeline[0][1] == Decimal(TIMELINE_MAX // 2)
