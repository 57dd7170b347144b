"""The broker's trade-update hook sees every state change the order model adds, in order.

In-process (no server): the hook is the seam the trade-updates stream listens on.
"""

import pytest

from alpacasim.accounts import Account
from alpacasim.broker import Broker
from alpacasim.config import DEFAULT_SYMBOLS, AccountSpec
from alpacasim.market import Market, MarketClock, Override


@pytest.fixture
def world():
    market = Market(seed=1, clock=MarketClock("open"))
    broker = Broker(market, seed=1, universe=frozenset(DEFAULT_SYMBOLS))
    acct = Account.from_spec(AccountSpec(api_key="K", secret_key="S"))
    broker.add_account(acct)
    events = []
    broker.listeners.append(lambda event, order, extra: events.append((event, order.id)))

    def price(p):
        market.overrides["AAPL"] = Override(p)
        broker.evaluate_symbol("AAPL")

    price(100)
    return broker, acct, events, price


def order(**kw):
    return {"symbol": "AAPL", "qty": 5, "side": "buy", "time_in_force": "gtc", **kw}


def test_replace_and_cancel_events(world):
    broker, acct, events, _ = world
    old = broker.submit(acct, order(type="limit", limit_price="90"))
    new = broker.replace(acct, old.id, {"limit_price": "91"})
    broker.cancel(acct, new.id)
    assert events == [
        ("new", old.id), ("pending_replace", old.id), ("replaced", old.id),
        ("new", new.id), ("pending_cancel", new.id), ("canceled", new.id),
    ]


def test_bracket_events(world):
    broker, acct, events, price = world
    parent = broker.submit(
        acct,
        order(type="limit", limit_price="99", order_class="bracket",
              take_profit={"limit_price": "110"}, stop_loss={"stop_price": "95"}),
    )
    tp, sl = parent.legs
    assert events == [("new", parent.id)]  # held legs are not live yet
    price(98.5)
    price(111)
    assert events[1:] == [
        ("fill", parent.id), ("new", tp.id), ("new", sl.id), ("fill", tp.id), ("canceled", sl.id),
    ]
