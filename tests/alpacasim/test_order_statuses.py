"""The statuses pending_new, accepted and done_for_day, as REST shows them and TradingStream receives
them, through alpaca-py over real HTTP and WebSocket."""

from decimal import Decimal

from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, ReplaceOrderRequest

from tests.helpers.sim import SimError
from tests.helpers.sim_streams import wait_for

from .conftest import cash_account
from .test_orders import limit, market
from .test_sessions import at
from .test_streams_trade_updates import FIXED, _events, _listening, _ready


def test_pending_new_until_acknowledged_then_new_and_filled(sim, streams, trading):
    cash_account(sim)
    sim.set_clock(now=FIXED)
    assert sim.control("POST", "/_sim/order_model", {"pending_new_seconds": 0.5}) == {"pending_new_seconds": 0.5}
    runner = _listening(streams)
    _ready(sim, runner)
    order = trading.submit_order(market("AAPL", 2))
    assert order.status == OrderStatus.PENDING_NEW and Decimal(order.filled_qty) == 0
    assert Decimal(trading.get_account().buying_power) < 100000  # held like any open buy
    events = _events(runner, str(order.id), "fill", timeout=30)
    assert [e.event for e in events] == ["pending_new", "new", "fill"]
    assert [e.order.status for e in events] == ["pending_new", "new", "filled"]
    assert trading.get_order_by_id(order.id).status == OrderStatus.FILLED
    ioc = trading.submit_order(limit("AAPL", 1, 1000, tif=TimeInForce.IOC))
    assert ioc.status == OrderStatus.FILLED  # ioc/fok are never left pending
    sim.reset()
    assert trading.submit_order(market("AAPL", 1)).status == OrderStatus.FILLED  # the default: no delay


def test_the_pending_new_delay_is_validated(sim):
    for bad in (-1, 61, "x"):
        try:
            sim.control("POST", "/_sim/order_model", {"pending_new_seconds": bad})
        except SimError as exc:
            assert "422" in str(exc)
        else:
            raise AssertionError(f"pending_new_seconds={bad!r} was accepted")


def test_a_gtc_order_is_done_for_day_at_the_close_and_trades_again_at_the_open(sim, streams, trading):
    at(sim, "2026-11-30T15:59")
    sim.set_price("AAPL", 100)
    runner = _listening(streams)
    _ready(sim, runner)
    gtc = trading.submit_order(limit("AAPL", 2, 90, tif=TimeInForce.GTC))
    day = trading.submit_order(limit("AAPL", 1, 89, tif=TimeInForce.DAY))
    sim.set_clock(advance_seconds=60)  # 16:00, the close
    assert [e.event for e in _events(runner, str(gtc.id), "done_for_day", timeout=30)] == ["new", "done_for_day"]
    assert [e.event for e in _events(runner, str(day.id), "expired", timeout=30)] == ["new", "expired"]
    rest = trading.get_order_by_id(gtc.id)
    assert rest.status == OrderStatus.DONE_FOR_DAY and rest.expired_at is None
    assert [o.id for o in trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))] == [gtc.id]
    sim.set_price("AAPL", 80)  # after hours: a regular-hours order does not trade
    assert trading.get_order_by_id(gtc.id).status == OrderStatus.DONE_FOR_DAY
    at(sim, "2026-12-01T09:30")
    fill = _events(runner, str(gtc.id), "fill", timeout=30)[-1]
    assert fill.order.status == "filled" and Decimal(str(fill.price)) == Decimal("80.01")
    assert trading.get_order_by_id(gtc.id).status == OrderStatus.FILLED


def test_a_done_for_day_order_can_be_canceled(sim, trading):
    cash_account(sim)
    at(sim, "2026-11-30T15:00")
    sim.set_price("AAPL", 100)
    gtc = trading.submit_order(limit("AAPL", 1, 90, OrderSide.BUY, tif=TimeInForce.GTC))
    at(sim, "2026-11-30T17:00")
    wait_for(lambda: trading.get_order_by_id(gtc.id).status == OrderStatus.DONE_FOR_DAY, what="done_for_day")
    trading.cancel_order_by_id(gtc.id)
    assert trading.get_order_by_id(gtc.id).status == OrderStatus.CANCELED
    assert Decimal(trading.get_account().buying_power) == 100000


def test_a_replacement_is_pending_new_too(sim, streams, trading):
    sim.set_clock(now=FIXED)
    sim.set_price("AAPL", 100)
    sim.control("POST", "/_sim/order_model", {"pending_new_seconds": 0.3})
    runner = _listening(streams)
    _ready(sim, runner)
    order = trading.submit_order(limit("AAPL", 1, 90))
    assert [e.event for e in _events(runner, str(order.id), "new", timeout=30)] == ["pending_new", "new"]
    new = trading.replace_order_by_id(order.id, ReplaceOrderRequest(limit_price=91))
    assert new.status == OrderStatus.PENDING_NEW and str(new.replaces) == str(order.id)
    assert [e.event for e in _events(runner, str(order.id), "replaced", timeout=30)] == ["pending_replace", "replaced"]
    assert [e.event for e in _events(runner, str(new.id), "new", timeout=30)] == ["pending_new", "new"]
    assert trading.get_order_by_id(new.id).status == OrderStatus.NEW
