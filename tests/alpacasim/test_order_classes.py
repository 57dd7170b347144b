"""Replace (PATCH), trailing stops and bracket / oco / oto orders, driven through alpaca-py."""

from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderClass, OrderSide, OrderStatus, OrderType, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)

from .conftest import cash_account
from .test_orders import limit, market


def test_replace_limit_gives_a_new_order_and_marks_the_old_replaced(sim, trading):
    cash_account(sim)
    sim.set_price("AAPL", 100)
    old = trading.submit_order(limit("AAPL", 5, 90, client_order_id="first"))
    new = trading.replace_order_by_id(
        old.id, ReplaceOrderRequest(qty=3, limit_price=91.5, client_order_id="second")
    )
    assert new.id != old.id and str(new.replaces) == str(old.id)
    assert new.status == OrderStatus.NEW and new.client_order_id == "second"
    assert Decimal(new.qty) == 3 and Decimal(new.limit_price) == Decimal("91.5")
    assert new.type == OrderType.LIMIT and new.time_in_force == TimeInForce.GTC
    replaced = trading.get_order_by_id(old.id)
    assert replaced.status == OrderStatus.REPLACED
    assert str(replaced.replaced_by) == str(new.id) and replaced.replaced_at is not None
    # buying power holds only the replacement: 3 x 91.50
    assert Decimal(trading.get_account().buying_power) == Decimal(100000) - Decimal("274.50")
    # the replacement fills like any order; the replaced one can no longer be touched
    sim.set_price("AAPL", 91, bid=90.99, ask=91.01)
    assert trading.get_order_by_id(new.id).status == OrderStatus.FILLED
    with pytest.raises(APIError) as err:
        trading.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=92))
    assert err.value.status_code == 422 and "replaced" in err.value.message


def test_replace_refusals(sim, trading):
    sim.set_price("AAPL", 100)
    filled = trading.submit_order(market("AAPL", 1))
    with pytest.raises(APIError) as err:
        trading.replace_order_by_id(filled.id, ReplaceOrderRequest(qty=2))
    assert err.value.status_code == 422 and '"filled" state' in err.value.message
    resting = trading.submit_order(limit("AAPL", 1, 50))
    with pytest.raises(APIError) as err:  # a limit order has no stop price
        trading.replace_order_by_id(resting.id, ReplaceOrderRequest(stop_price=40))
    assert err.value.status_code == 422
    with pytest.raises(APIError) as err:  # more than the buying power
        trading.replace_order_by_id(resting.id, ReplaceOrderRequest(qty=5000))
    assert err.value.status_code == 403
    with pytest.raises(APIError) as err:
        trading.replace_order_by_id("00000000-0000-4000-8000-000000000000", ReplaceOrderRequest(qty=1))
    assert err.value.status_code == 404
    assert trading.get_order_by_id(resting.id).status == OrderStatus.NEW  # nothing lost


def trailing(qty, side, **kw):
    return TrailingStopOrderRequest(
        symbol="AAPL", qty=qty, side=side, time_in_force=TimeInForce.GTC, **kw
    )


def test_trailing_stop_follows_the_high_water_mark_then_fires(sim, trading):
    sim.set_price("AAPL", 100)
    trading.submit_order(market("AAPL", 10))
    order = trading.submit_order(trailing(10, OrderSide.SELL, trail_price=2))
    assert order.status == OrderStatus.NEW and order.type == OrderType.TRAILING_STOP
    assert Decimal(order.hwm) == 100 and Decimal(order.stop_price) == 98
    assert Decimal(order.trail_price) == 2
    sim.set_price("AAPL", 110)
    moved = trading.get_order_by_id(order.id)
    assert Decimal(moved.hwm) == 110 and Decimal(moved.stop_price) == 108
    sim.set_price("AAPL", 105)  # a fall does not lower the stop, but crosses it
    fired = trading.get_order_by_id(order.id)
    assert fired.status == OrderStatus.FILLED
    assert Decimal(fired.hwm) == 110 and Decimal(fired.filled_avg_price) == Decimal("104.99")


def test_trailing_percent_buy_tracks_the_low_and_trail_can_be_replaced(sim, trading):
    sim.set_price("AAPL", 100)
    order = trading.submit_order(trailing(1, OrderSide.BUY, trail_percent=5))
    assert Decimal(order.stop_price) == 105 and Decimal(order.trail_percent) == 5
    sim.set_price("AAPL", 80)
    assert Decimal(trading.get_order_by_id(order.id).stop_price) == 84
    new = trading.replace_order_by_id(order.id, ReplaceOrderRequest(trail=10))
    assert Decimal(new.trail_percent) == 10 and Decimal(new.stop_price) == 88
    sim.set_price("AAPL", 87)
    assert trading.get_order_by_id(new.id).status == OrderStatus.NEW
    sim.set_price("AAPL", 88.5)
    assert trading.get_order_by_id(new.id).status == OrderStatus.FILLED


def test_trailing_stop_needs_exactly_one_trail(sim, trading):
    raw = {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "trailing_stop", "time_in_force": "gtc"}
    for extra in ({}, {"trail_price": 1, "trail_percent": 1}, {"trail_percent": 150}):
        with pytest.raises(APIError) as err:
            trading.post("/orders", {**raw, **extra})
        assert err.value.status_code == 422
    with pytest.raises(APIError):
        trading.post("/orders", {**raw, "trail_price": 1, "time_in_force": "ioc"})


def bracket(tp=110, sl=95, sl_limit=None, cls=OrderClass.BRACKET, tif=TimeInForce.GTC):
    return MarketOrderRequest(
        symbol="AAPL", qty=10, side=OrderSide.BUY, time_in_force=tif, order_class=cls,
        take_profit=TakeProfitRequest(limit_price=tp) if tp else None,
        stop_loss=StopLossRequest(stop_price=sl, limit_price=sl_limit) if sl else None,
    )


def test_bracket_legs_are_held_until_the_parent_fills(sim, trading):
    sim.set_price("AAPL", 100)
    parent = trading.submit_order(
        LimitOrderRequest(
            symbol="AAPL", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
            limit_price=99, order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=110), stop_loss=StopLossRequest(stop_price=95),
        )
    )
    assert parent.order_class == OrderClass.BRACKET and parent.status == OrderStatus.NEW
    tp, sl = parent.legs
    assert tp.side == sl.side == OrderSide.SELL
    assert tp.type == OrderType.LIMIT and Decimal(tp.limit_price) == 110
    assert sl.type == OrderType.STOP and Decimal(sl.stop_price) == 95
    assert tp.status == sl.status == OrderStatus.HELD
    sim.set_price("AAPL", 120)  # the take-profit would fill, but it is held
    assert trading.get_order_by_id(tp.id).status == OrderStatus.HELD
    sim.set_price("AAPL", 98.5)  # the entry fills at 98.51; the legs go live
    assert trading.get_order_by_id(parent.id).status == OrderStatus.FILLED
    assert {leg.status for leg in trading.get_order_by_id(parent.id).legs} == {OrderStatus.NEW}
    # nested listing rolls the legs into their parent; the flat listing shows them as orders
    nested = trading.get_orders(GetOrdersRequest(status="all", nested=True))
    assert [o.id for o in nested] == [parent.id] and len(nested[0].legs) == 2
    flat = trading.get_orders(GetOrdersRequest(status="open"))
    assert {o.id for o in flat} == {tp.id, sl.id}
    assert Decimal(trading.get_open_position("AAPL").qty_available) == 0  # the exits claim it
    sim.set_price("AAPL", 94)  # the stop-loss fires; the take-profit is canceled
    assert trading.get_order_by_id(sl.id).status == OrderStatus.FILLED
    assert trading.get_order_by_id(tp.id).status == OrderStatus.CANCELED
    assert trading.get_all_positions() == []


def test_bracket_take_profit_fills_and_cancels_the_stop(sim, trading):
    sim.set_price("AAPL", 100)
    parent = trading.submit_order(bracket(sl_limit=94))
    assert parent.status == OrderStatus.FILLED
    tp, sl = trading.get_order_by_id(parent.id).legs
    assert tp.status == OrderStatus.NEW and sl.type == OrderType.STOP_LIMIT
    sim.set_price("AAPL", 111)
    assert trading.get_order_by_id(tp.id).status == OrderStatus.FILLED
    assert trading.get_order_by_id(sl.id).status == OrderStatus.CANCELED


def test_canceling_an_unfilled_bracket_cancels_its_legs(sim, trading):
    sim.set_price("AAPL", 100)
    parent = trading.submit_order(
        LimitOrderRequest(
            symbol="AAPL", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
            limit_price=90, order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=110), stop_loss=StopLossRequest(stop_price=85),
        )
    )
    trading.cancel_order_by_id(parent.id)
    assert {leg.status for leg in trading.get_order_by_id(parent.id).legs} == {OrderStatus.CANCELED}
    assert trading.get_orders() == []


def test_replacing_a_bracket_leg_keeps_the_pair(sim, trading):
    sim.set_price("AAPL", 100)
    parent = trading.submit_order(bracket())
    tp, sl = trading.get_order_by_id(parent.id).legs
    new_tp = trading.replace_order_by_id(tp.id, ReplaceOrderRequest(limit_price=105))
    assert trading.get_order_by_id(tp.id).status == OrderStatus.REPLACED
    assert [leg.id for leg in trading.get_order_by_id(parent.id).legs] == [new_tp.id, sl.id]
    sim.set_price("AAPL", 106)
    assert trading.get_order_by_id(new_tp.id).status == OrderStatus.FILLED
    assert trading.get_order_by_id(sl.id).status == OrderStatus.CANCELED


def test_bracket_validation(sim, trading):
    sim.set_price("AAPL", 100)
    with pytest.raises(APIError) as err:  # take-profit below the stop-loss of a long entry
        trading.submit_order(bracket(tp=90, sl=95))
    assert err.value.status_code == 422
    with pytest.raises(APIError) as err:
        trading.post("/orders", {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market",
                                 "time_in_force": "gtc", "order_class": "bracket",
                                 "take_profit": {"limit_price": 110}})  # fmt: skip
    assert err.value.status_code == 422
    with pytest.raises(APIError) as err:
        trading.submit_order(bracket(tif=TimeInForce.IOC))
    assert err.value.status_code == 422
    assert trading.get_orders(GetOrdersRequest(status="all")) == []


def test_oco_exits_cancel_each_other(sim, trading):
    sim.set_price("AAPL", 100)
    trading.submit_order(market("AAPL", 10))
    oco = trading.submit_order(
        LimitOrderRequest(
            symbol="AAPL", qty=10, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
            order_class=OrderClass.OCO,
            take_profit=TakeProfitRequest(limit_price=110), stop_loss=StopLossRequest(stop_price=90),
        )
    )
    assert oco.order_class == OrderClass.OCO and Decimal(oco.limit_price) == 110
    (stop,) = oco.legs
    assert oco.status == stop.status == OrderStatus.NEW and Decimal(stop.stop_price) == 90
    assert Decimal(trading.get_open_position("AAPL").qty_available) == 0
    sim.set_price("AAPL", 111)
    assert trading.get_order_by_id(oco.id).status == OrderStatus.FILLED
    assert trading.get_order_by_id(stop.id).status == OrderStatus.CANCELED


def test_oto_holds_its_one_leg(sim, trading):
    sim.set_price("AAPL", 100)
    oto = trading.submit_order(bracket(tp=None, sl=95, cls=OrderClass.OTO))
    assert oto.status == OrderStatus.FILLED and oto.order_class == OrderClass.OTO
    (stop,) = trading.get_order_by_id(oto.id).legs
    assert stop.status == OrderStatus.NEW and Decimal(stop.qty) == 10
    sim.set_price("AAPL", 94)
    assert trading.get_order_by_id(stop.id).status == OrderStatus.FILLED
