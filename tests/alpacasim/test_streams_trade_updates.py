"""Trade updates, driven by alpaca-py's TradingStream over a real WebSocket, while alpaca-py's
TradingClient and the /_sim/ controls change orders."""

from decimal import Decimal

from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

from tests.alpacasim.conftest import LIVE_KEY, LIVE_SECRET, PAPER2_KEY, PAPER2_SECRET, trading_client
from tests.helpers.sim_streams import wait_for

FIXED = "2030-03-04T15:00:00Z"


def _listening(streams, **kw):
    runner = streams("trading", **kw)
    runner.client.subscribe_trade_updates(runner.handler)
    runner.start()
    return runner


def _ready(sim, runner, feed="paper/stream"):
    """Authenticated and listening: from here on, every order event reaches the client."""
    wait_for(lambda: sim.control("GET", "/_sim/streams")["listening"].get(feed) == 1, what="trade stream listening")


def _events(runner, order_id, until: str, timeout: float = 15.0) -> list:
    """The updates of one order up to the event ``until``; other orders' updates are kept for their turn."""
    stash = runner.__dict__.setdefault("stash", {})
    got = stash.setdefault(order_id, [])
    while not got or got[-1].event != until:
        update = runner.data(timeout=timeout)
        stash.setdefault(str(update.order.id), []).append(update)
    return stash.pop(order_id)


def _market(side, qty, symbol="AAPL"):
    return MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY)


def test_market_buy_new_then_fill_with_the_execution(sim, streams, trading):
    sim.set_clock(now=FIXED)
    runner = _listening(streams)
    _ready(sim, runner)
    trading.submit_order(_market(OrderSide.BUY, 1))
    order = trading.submit_order(_market(OrderSide.BUY, 3))
    new, fill = _events(runner, str(order.id), "fill")
    assert new.event == "new" and new.order.status == "new" and new.order.filled_qty == "0"
    assert fill.event == "fill" and fill.order.status == "filled"
    rest = trading.get_order_by_id(order.id)
    assert Decimal(str(fill.price)) == Decimal(rest.filled_avg_price)
    assert fill.qty == 3 and fill.position_qty == 4  # 1 from the first order, then 3
    assert fill.execution_id is not None
    assert fill.timestamp == rest.filled_at  # to the microsecond


def test_partial_fills_cancel_and_controls_in_order(sim, streams, trading):
    sim.set_clock(now=FIXED)
    runner = _listening(streams)
    _ready(sim, runner)
    resting = trading.submit_order(
        LimitOrderRequest(symbol="MSFT", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=1.00)
    )
    sim.fill(str(resting.id), qty=4, price=1.00)
    sim.fill(str(resting.id), qty=6, price=0.99)
    events = _events(runner, str(resting.id), "fill")
    assert [e.event for e in events] == ["new", "partial_fill", "fill"]
    assert [(e.qty, e.position_qty, e.price) for e in events[1:]] == [(4, 4, 1.0), (6, 10, 0.99)]
    assert events[1].order.status == "partially_filled" and events[1].order.filled_qty == "4"
    assert len({e.execution_id for e in events[1:]}) == 2

    to_cancel = trading.submit_order(
        LimitOrderRequest(symbol="MSFT", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, limit_price=1.00)
    )
    trading.cancel_order_by_id(to_cancel.id)
    new, pending, canceled = _events(runner, str(to_cancel.id), "canceled")
    assert (new.event, pending.event, canceled.event, canceled.order.status) == ("new", "pending_cancel", "canceled", "canceled")
    assert canceled.order.canceled_at is not None


def test_fill_from_the_walk_is_pushed_without_a_rest_read(sim, streams, trading):
    """A resting limit that the (un-overridden) walk crosses fills by itself and its fill is pushed."""
    sim.set_clock(now=FIXED)
    sim.set_price("SPY", 10_000)
    runner = _listening(streams)
    _ready(sim, runner)
    order = trading.submit_order(
        LimitOrderRequest(symbol="SPY", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=5_000)
    )
    sim.clear_price("SPY")  # the walk (about 560) is now far below the limit; nothing reads the order
    new, fill = _events(runner, str(order.id), "fill")
    assert new.order.status == "new" and fill.order.status == "filled"
    assert 100 < fill.price < 5_000


def test_updates_go_only_to_the_orders_account(sim, streams, trading):
    runner = _listening(streams)
    other = _listening(streams, key=PAPER2_KEY, secret=PAPER2_SECRET)
    wait_for(lambda: sim.control("GET", "/_sim/streams")["listening"].get("paper/stream") == 2, what="both listening")
    mine = trading.submit_order(_market(OrderSide.BUY, 1))
    theirs = trading_client(sim, key=PAPER2_KEY, secret=PAPER2_SECRET).submit_order(_market(OrderSide.BUY, 2))
    _events(other, str(theirs.id), "fill")
    after = trading.submit_order(_market(OrderSide.BUY, 1))
    _events(runner, str(mine.id), "fill")
    _events(runner, str(after.id), "fill")  # per-stream order: a misrouted update would have come before this
    seen = set(runner.__dict__.get("stash", {}))
    while not runner.events.empty():
        kind, item = runner.events.get()
        if kind == "data":
            seen.add(str(item.order.id))
    assert str(theirs.id) not in seen


def test_scope_is_enforced(sim, streams):
    paper_on_live = _listening(streams, path="/live/stream")
    paper_on_live.log("failed to authenticate")
    live = _listening(streams, key=LIVE_KEY, secret=LIVE_SECRET, path="/live/stream", paper=False)
    _ready(sim, live, "live/stream")
    live_trading = trading_client(sim, key=LIVE_KEY, secret=LIVE_SECRET, paper=False)
    order = live_trading.submit_order(_market(OrderSide.BUY, 1))
    assert [e.event for e in _events(live, str(order.id), "fill")] == ["new", "fill"]


def test_ioc_cancel_all_and_close_position_events(sim, streams, trading):
    sim.set_clock(now=FIXED)
    runner = _listening(streams)
    _ready(sim, runner)
    ioc = trading.submit_order(
        LimitOrderRequest(symbol="MSFT", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.IOC, limit_price=1.00)
    )
    assert [e.event for e in _events(runner, str(ioc.id), "canceled")] == ["new", "canceled"]
    resting = [
        trading.submit_order(
            LimitOrderRequest(symbol="MSFT", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=price)
        )
        for price in (1.00, 2.00)
    ]
    trading.cancel_orders()
    for order in resting:
        assert [e.event for e in _events(runner, str(order.id), "canceled")] == ["new", "pending_cancel", "canceled"]
    trading.submit_order(_market(OrderSide.BUY, 5))
    close = trading.close_position("AAPL")
    new, fill = _events(runner, str(close.id), "fill")
    assert (new.order.side, fill.qty, fill.position_qty) == ("sell", 5, 0)
