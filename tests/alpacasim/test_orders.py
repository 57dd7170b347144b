import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import (
    OrderSide,
    OrderStatus,
    PositionIntent,
    QueryOrderStatus,
    TimeInForce,
)
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
)

from .conftest import PAPER2_KEY, PAPER2_SECRET, PAPER_KEY, cash_account, trading_client


def market(symbol, qty, side=OrderSide.BUY, **kw):
    return MarketOrderRequest(
        symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY, **kw
    )


def limit(symbol, qty, price, side=OrderSide.BUY, tif=TimeInForce.GTC, **kw):
    return LimitOrderRequest(
        symbol=symbol, qty=qty, side=side, time_in_force=tif, limit_price=price, **kw
    )


def test_market_buy_fills_at_ask_and_updates_cash(sim, trading):
    sim.set_price("AAPL", 100.00)  # bid 99.99, ask 100.01
    order = trading.submit_order(market("AAPL", 10))
    assert order.status == OrderStatus.FILLED
    assert Decimal(order.filled_avg_price) == Decimal("100.01")
    assert Decimal(order.filled_qty) == 10
    assert order.order_class == "simple" and order.legs is None
    assert order.position_intent == PositionIntent.BUY_TO_OPEN
    acct = trading.get_account()
    assert Decimal(acct.cash) == Decimal(100000) - Decimal("1000.10")
    pos = trading.get_open_position("AAPL")
    assert Decimal(pos.qty) == 10 and Decimal(pos.avg_entry_price) == Decimal("100.01")
    assert Decimal(pos.current_price) == Decimal(100)
    assert Decimal(pos.market_value) == Decimal("1000.00")
    assert Decimal(pos.unrealized_pl) == Decimal("-0.10")
    # equity = cash + long market value
    assert Decimal(acct.equity) == Decimal(acct.cash) + Decimal(acct.long_market_value)
    assert Decimal(acct.long_market_value) == Decimal("1000.00")


def test_market_sell_fills_at_bid(sim, trading):
    sim.set_price("MSFT", 50, bid=49.50, ask=50.50)
    trading.submit_order(market("MSFT", 4))
    sell = trading.submit_order(market("MSFT", 4, OrderSide.SELL))
    assert sell.status == OrderStatus.FILLED and Decimal(
        sell.filled_avg_price
    ) == Decimal("49.50")
    assert sell.position_intent == PositionIntent.SELL_TO_CLOSE
    assert trading.get_all_positions() == []
    assert Decimal(trading.get_account().cash) == Decimal(100000) - 4 * Decimal(
        "50.50"
    ) + 4 * Decimal("49.50")


def test_timestamps_are_utc_with_microseconds(sim, trading):
    order = trading.submit_order(market("AAPL", 1))
    state = sim.state()
    raw = next(
        o for a in state["accounts"] for o in a["orders"] if o["id"] == str(order.id)
    )
    for key in ("created_at", "submitted_at", "updated_at", "filled_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", raw[key]), raw[
            key
        ]
    assert order.created_at.tzinfo is not None
    assert abs(order.created_at - datetime.now(UTC)) < timedelta(seconds=5)


def test_accepts_strings_and_mixed_case_booleans(sim):
    raw = trading_client(sim)
    body = {"symbol": "aapl", "qty": "3", "side": "buy", "type": "limit", "time_in_force": "day",
            "limit_price": "1.5", "extended_hours": "True"}  # fmt: skip
    order = raw.post("/orders", body)
    assert (
        order["qty"] == "3"
        and order["limit_price"] == "1.5"
        and order["extended_hours"] is True
    )
    assert order["status"] == "new" and order["symbol"] == "AAPL"
    body = {
        "symbol": "AAPL",
        "qty": 2,
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "extended_hours": "FALSE",
    }
    assert raw.post("/orders", body)["status"] == "filled"


def test_limit_rests_then_fills_when_price_crosses(sim, trading):
    sim.set_price("AAPL", 100)
    order = trading.submit_order(limit("AAPL", 5, 95))
    assert order.status == OrderStatus.NEW and Decimal(order.filled_qty) == 0
    assert trading.get_order_by_id(order.id).status == OrderStatus.NEW
    sim.set_price("AAPL", 94, bid=93.98, ask=94.02)
    filled = trading.get_order_by_id(order.id)
    assert filled.status == OrderStatus.FILLED
    assert Decimal(filled.filled_avg_price) == Decimal(
        "94.02"
    )  # filled at the ask, at or below the limit
    assert filled.filled_at is not None


def test_marketable_limit_fills_immediately(sim, trading):
    sim.set_price("AAPL", 100)
    order = trading.submit_order(limit("AAPL", 2, 101))
    assert order.status == OrderStatus.FILLED and Decimal(
        order.filled_avg_price
    ) == Decimal("100.01")
    sell = trading.submit_order(limit("AAPL", 2, 99, OrderSide.SELL))
    assert sell.status == OrderStatus.FILLED and Decimal(
        sell.filled_avg_price
    ) == Decimal("99.99")


def test_limit_order_fills_through_random_walk(sim, trading):
    """Without overrides, a resting order fills once the walk crosses it (fixed clock: deterministic)."""
    sim.set_clock(now="2030-03-04T15:00:00Z")
    quote = sim.set_price("NVDA", clear=True)
    order = trading.submit_order(limit("NVDA", 1, round(quote["ask"] * 0.999, 2)))
    assert order.status == OrderStatus.NEW
    start = datetime(2030, 3, 4, 15, tzinfo=UTC)
    for minutes in range(1, 24 * 60 * 30, 7):
        sim.set_clock(now=(start + timedelta(minutes=minutes)).isoformat())
        if trading.get_order_by_id(order.id).status == OrderStatus.FILLED:
            break
    assert trading.get_order_by_id(order.id).status == OrderStatus.FILLED


def test_stop_orders_trigger_on_price(sim, trading):
    sim.set_price("AAPL", 100)
    trading.submit_order(market("AAPL", 10))
    stop = trading.submit_order(
        StopOrderRequest(
            symbol="AAPL", qty=10, side="sell", time_in_force="gtc", stop_price=90
        )
    )
    assert stop.status == OrderStatus.NEW
    sim.set_price("MSFT", 100)
    stop_buy = trading.submit_order(
        StopLimitOrderRequest(
            symbol="MSFT",
            qty=1,
            side="buy",
            time_in_force="day",
            stop_price=110,
            limit_price=111,
        )
    )
    sim.set_price("MSFT", 105)
    assert trading.get_order_by_id(stop_buy.id).status == OrderStatus.NEW
    sim.set_price("MSFT", 110.5)
    buy = trading.get_order_by_id(stop_buy.id)
    assert buy.status == OrderStatus.FILLED and Decimal(
        buy.filled_avg_price
    ) == Decimal("110.51")
    sim.set_price("AAPL", 95)
    assert trading.get_order_by_id(stop.id).status == OrderStatus.NEW
    sim.set_price("AAPL", 89)
    sold = trading.get_order_by_id(stop.id)
    assert sold.status == OrderStatus.FILLED and Decimal(
        sold.filled_avg_price
    ) == Decimal("88.99")


def test_cancel_returns_204_and_cancels(sim, trading):
    sim.set_price("AAPL", 100)
    order = trading.submit_order(limit("AAPL", 1, 50))
    assert trading.cancel_order_by_id(order.id) is None  # alpaca-py returns None on 204
    canceled = trading.get_order_by_id(order.id)
    assert canceled.status == OrderStatus.CANCELED and canceled.canceled_at is not None
    resp = trading._session.request(
        "DELETE",
        f"{sim.paper_url}/v2/orders/{order.id}",
        headers=trading._get_default_headers(),
    )
    assert resp.status_code == 422 and resp.json()["code"] == 42210000


def test_cancel_filled_order_is_422(sim, trading):
    order = trading.submit_order(market("AAPL", 1))
    with pytest.raises(APIError) as err:
        trading.cancel_order_by_id(order.id)
    assert err.value.status_code == 422 and err.value.code == 42210000


def test_cancel_all_returns_207_with_per_order_statuses(sim, trading):
    sim.set_price("AAPL", 100)
    ids = {str(trading.submit_order(limit("AAPL", 1, 50 + i)).id) for i in range(3)}
    trading.submit_order(market("AAPL", 1))
    resp = trading._session.request(
        "DELETE", f"{sim.paper_url}/v2/orders", headers=trading._get_default_headers()
    )
    assert resp.status_code == 207
    body = resp.json()
    assert {r["id"] for r in body} == ids and {r["status"] for r in body} == {200}
    assert {r["body"]["status"] for r in body} == {"canceled"}
    ids = {str(trading.submit_order(limit("AAPL", 1, 60 + i)).id) for i in range(2)}
    result = trading.cancel_orders()
    assert {str(r.id) for r in result} == ids
    assert all(r.status == 200 for r in result)
    assert trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []


def test_unknown_order_is_404(trading):
    with pytest.raises(APIError) as err:
        trading.get_order_by_id("00000000-0000-4000-8000-000000000000")
    assert err.value.status_code == 404 and err.value.code == 40410000
    with pytest.raises(APIError) as err:
        trading.cancel_order_by_id("00000000-0000-4000-8000-000000000000")
    assert err.value.status_code == 404


def test_client_order_id_lookup_and_duplicates(sim, trading):
    order = trading.submit_order(market("AAPL", 1, client_order_id="my-order-1"))
    assert order.client_order_id == "my-order-1"
    assert trading.get_order_by_client_id("my-order-1").id == order.id
    with pytest.raises(APIError) as err:
        trading.submit_order(market("AAPL", 1, client_order_id="my-order-1"))
    assert err.value.status_code == 422 and err.value.code == 42210000
    # client_order_id is unique per account, not globally
    other = trading_client(sim, PAPER2_KEY, PAPER2_SECRET)
    assert (
        other.submit_order(
            market("AAPL", 1, client_order_id="my-order-1")
        ).client_order_id
        == "my-order-1"
    )
    with pytest.raises(APIError) as err:
        trading.get_order_by_client_id("nope")
    assert err.value.status_code == 404


def test_insufficient_buying_power_is_403(sim, trading):
    cash_account(sim)
    sim.set_price("AAPL", 100)
    with pytest.raises(APIError) as err:
        trading.submit_order(market("AAPL", 1001))
    assert err.value.status_code == 403 and err.value.code == 40310000
    assert "buying power" in err.value.message


def test_open_buy_orders_reduce_buying_power(sim, trading):
    cash_account(sim)
    sim.set_price("AAPL", 100)
    trading.submit_order(limit("AAPL", 600, 90))  # reserves 54,000
    assert Decimal(trading.get_account().buying_power) == Decimal(46000)
    assert Decimal(trading.get_account().cash) == Decimal(100000)
    with pytest.raises(APIError) as err:
        trading.submit_order(limit("AAPL", 600, 90))
    assert err.value.status_code == 403
    trading.cancel_orders()
    assert Decimal(trading.get_account().buying_power) == Decimal(100000)


def test_invalid_orders_are_422(sim, trading):
    raw = trading_client(sim)
    bad = [
        {
            "symbol": "AAPL",
            "qty": 1,
            "side": "hold",
            "type": "market",
            "time_in_force": "day",
        },
        {
            "symbol": "AAPL",
            "qty": 0,
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
        },
        {
            "symbol": "AAPL",
            "qty": 1,
            "side": "buy",
            "type": "limit",
            "time_in_force": "day",
        },
        {
            "symbol": "AAPL",
            "qty": 1,
            "side": "buy",
            "type": "market",
            "time_in_force": "forever",
        },
        {
            "symbol": "AAPL",
            "qty": "abc",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
        },
        {
            "symbol": "AAPL",
            "qty": 1,
            "notional": 5,
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
        },
        {
            "symbol": "$$$",
            "qty": 1,
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
        },
    ]
    for body in bad:
        with pytest.raises(APIError) as err:
            raw.post("/orders", body)
        assert err.value.status_code == 422, body
        assert err.value.code == 42210000


def test_get_orders_filters(sim, trading):
    sim.set_price("AAPL", 100)
    sim.set_price("MSFT", 100)
    a = trading.submit_order(limit("AAPL", 1, 50))
    b = trading.submit_order(market("MSFT", 1))
    c = trading.submit_order(limit("MSFT", 1, 200, OrderSide.SELL))
    open_ids = [
        o.id for o in trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    ]
    assert open_ids == [c.id, a.id]  # newest first by default
    closed = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert [o.id for o in closed] == [b.id]
    all_asc = trading.get_orders(
        GetOrdersRequest(status=QueryOrderStatus.ALL, direction="asc")
    )
    assert [o.id for o in all_asc] == [a.id, b.id, c.id]
    assert [
        o.id for o in trading.get_orders(GetOrdersRequest(status="all", limit=1))
    ] == [c.id]
    assert [
        o.id
        for o in trading.get_orders(GetOrdersRequest(status="all", symbols=["AAPL"]))
    ] == [a.id]
    assert [
        o.id
        for o in trading.get_orders(GetOrdersRequest(status="all", side=OrderSide.SELL))
    ] == [c.id]
    after = trading.get_orders(
        GetOrdersRequest(status="all", after=a.submitted_at, direction="asc")
    )
    assert [o.id for o in after] == [b.id, c.id]
    until = trading.get_orders(GetOrdersRequest(status="all", until=b.submitted_at))
    assert [o.id for o in until] == [a.id]


def test_forced_partial_fill_then_fill(sim, trading):
    cash_account(sim)
    sim.set_price("AAPL", 100)
    order = trading.submit_order(limit("AAPL", 10, 50))
    part = sim.fill(str(order.id), qty=4, price=49)
    assert part["status"] == "partially_filled" and part["filled_qty"] == "4"
    got = trading.get_order_by_id(order.id)
    assert got.status == OrderStatus.PARTIALLY_FILLED and Decimal(
        got.filled_avg_price
    ) == Decimal(49)
    assert Decimal(trading.get_open_position("AAPL").qty) == 4
    # remaining 6 x 50 is still reserved
    assert (
        Decimal(trading.get_account().buying_power) == Decimal(100000) - 4 * 49 - 6 * 50
    )
    done = sim.fill(str(order.id), price=48)
    assert done["status"] == "filled" and done["filled_qty"] == "10"
    assert Decimal(done["filled_avg_price"]) == Decimal("48.4")
    assert Decimal(trading.get_account().cash) == Decimal(100000) - 4 * 49 - 6 * 48


def test_partial_cancel_keeps_fill(sim, trading):
    sim.set_price("AAPL", 100)
    order = trading.submit_order(limit("AAPL", 10, 50))
    sim.fill(str(order.id), qty=3)
    trading.cancel_order_by_id(order.id)
    got = trading.get_order_by_id(order.id)
    assert got.status == OrderStatus.CANCELED and Decimal(got.filled_qty) == 3
    assert Decimal(trading.get_open_position("AAPL").qty) == 3


def test_close_position_by_qty_and_percentage(sim, trading):
    sim.set_price("AAPL", 100)
    trading.submit_order(market("AAPL", 10))
    order = trading.close_position("AAPL", ClosePositionRequest(qty="4"))
    assert (
        order.side == OrderSide.SELL
        and Decimal(order.filled_qty) == 4
        and order.status == OrderStatus.FILLED
    )
    assert Decimal(trading.get_open_position("AAPL").qty) == 6
    trading.close_position("AAPL", ClosePositionRequest(percentage="50"))
    assert Decimal(trading.get_open_position("AAPL").qty) == 3
    trading.close_position("AAPL")
    with pytest.raises(APIError) as err:
        trading.get_open_position("AAPL")
    assert err.value.status_code == 404 and err.value.code == 40410000


def test_close_all_positions(sim, trading):
    trading.submit_order(market("AAPL", 1))
    trading.submit_order(market("MSFT", 2))
    result = trading.close_all_positions()
    assert sorted(r.symbol for r in result) == ["AAPL", "MSFT"] and all(
        r.status == 200 for r in result
    )
    assert trading.get_all_positions() == []


def test_short_selling_stocks_is_allowed_on_margin(sim, trading):
    sim.upsert_account(PAPER_KEY, multiplier=2)  # a margin account (cash accounts: test_margin.py)
    sim.set_price("AAPL", 100)
    order = trading.submit_order(market("AAPL", 5, OrderSide.SELL))
    assert (
        order.status == OrderStatus.FILLED
        and order.position_intent == PositionIntent.SELL_TO_OPEN
    )
    pos = trading.get_open_position("AAPL")
    assert Decimal(pos.qty) == -5 and pos.side == "short"
    acct = trading.get_account()
    assert Decimal(acct.cash) == Decimal(100000) + 5 * Decimal("99.99")
    assert Decimal(acct.short_market_value) == Decimal("-500.00")
    assert Decimal(acct.equity) == Decimal(acct.cash) + Decimal(acct.short_market_value)


def test_notional_market_buy(sim, trading):
    sim.set_price("AAPL", 100, bid=99.5, ask=100)
    order = trading.submit_order(
        MarketOrderRequest(symbol="AAPL", notional=250, side="buy", time_in_force="day")
    )
    assert order.status == OrderStatus.FILLED and Decimal(order.filled_qty) == Decimal(
        "2.5"
    )
    assert Decimal(order.notional) == 250


def test_inactive_account_cannot_trade(sim, trading):
    sim.upsert_account("PKDEMO0000000000001", status="ACCOUNT_CLOSED")
    with pytest.raises(APIError) as err:
        trading.submit_order(market("AAPL", 1))
    assert err.value.status_code == 403
