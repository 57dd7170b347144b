"""The rejections real Alpaca gives, with its status codes; a refused order leaves no trace."""

from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, MarketOrderRequest

from .conftest import PAPER_KEY
from .test_orders import limit, market


def refused(trading, body_or_request, status):
    with pytest.raises(APIError) as err:
        if isinstance(body_or_request, dict):
            trading.post("/orders", body_or_request)
        else:
            trading.submit_order(body_or_request)
    assert err.value.status_code == status, err.value
    return err.value.message


def test_unknown_symbols_are_422_and_the_universe_is_configured(sim, trading):
    assert "not found" in refused(trading, market("ZZZZ", 1), 422)
    assert "not found" in refused(trading, market("ZZZZ270115C00100000", 1), 422)
    symbols = {a.symbol for a in trading.get_all_assets()}
    assert {"AAPL", "MSFT", "SPY"} <= symbols and "ZZZZ" not in symbols
    with pytest.raises(APIError) as err:
        trading.get_asset("ZZZZ")
    assert err.value.status_code == 404
    aapl = trading.get_asset("AAPL")
    assert trading.get_asset(aapl.id).symbol == "AAPL"  # lookup by asset id


def test_sub_penny_prices_are_422(sim, trading):
    sim.set_price("AAPL", 100)
    assert "sub-penny" in refused(trading, limit("AAPL", 1, 99.001), 422)
    body = {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "stop", "time_in_force": "gtc",
            "stop_price": "120.125"}  # fmt: skip
    assert "sub-penny" in refused(trading, body, 422)
    sim.set_price("INTC", 0.5)
    cheap = trading.submit_order(limit("INTC", 10, 0.4999))  # below $1, four decimals are fine
    assert cheap.status == OrderStatus.NEW
    assert "sub-penny" in refused(trading, limit("INTC", 10, 0.49999), 422)


def test_fractional_and_notional_only_as_day_simple_orders(sim, trading):
    sim.set_price("AAPL", 100)
    assert "DAY" in refused(trading, limit("AAPL", 0.5, 90, tif=TimeInForce.GTC), 422)
    gtc_notional = {"symbol": "AAPL", "notional": 50, "side": "buy", "type": "market", "time_in_force": "gtc"}
    assert "DAY" in refused(trading, gtc_notional, 422)
    trailing = {"symbol": "AAPL", "qty": "0.5", "side": "buy", "type": "trailing_stop",
                "time_in_force": "day", "trail_price": 1}  # fmt: skip
    refused(trading, trailing, 422)
    ok = trading.submit_order(limit("AAPL", 0.5, 90, tif=TimeInForce.DAY))
    assert ok.status == OrderStatus.NEW and Decimal(ok.qty) == Decimal("0.5")
    day_notional = trading.submit_order(
        MarketOrderRequest(symbol="AAPL", notional=50, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert day_notional.status == OrderStatus.FILLED


def test_selling_more_than_available_or_flipping_long_to_short_is_403(sim, trading):
    sim.upsert_account(PAPER_KEY, multiplier=2)  # margin: may sell short from flat
    sim.set_price("AAPL", 100)
    trading.submit_order(market("AAPL", 10))
    assert "insufficient qty available" in refused(trading, market("AAPL", 11, OrderSide.SELL), 403)
    trading.submit_order(limit("AAPL", 6, 150, OrderSide.SELL))  # claims 6 of the 10
    assert "available: 4" in refused(trading, market("AAPL", 5, OrderSide.SELL), 403)
    assert trading.submit_order(market("AAPL", 4, OrderSide.SELL)).status == OrderStatus.FILLED
    # from flat a stock may still be sold short, but not in fractions
    sim.set_price("MSFT", 100)
    assert trading.submit_order(market("MSFT", 2, OrderSide.SELL)).status == OrderStatus.FILLED
    assert "short" in refused(trading, market("NVDA", 0.5, OrderSide.SELL), 403)


def test_crossing_the_accounts_own_resting_order_is_a_potential_wash_trade(sim, trading):
    sim.upsert_account(PAPER_KEY, multiplier=2)  # margin: may sell short from flat
    sim.set_price("AAPL", 100)
    trading.submit_order(market("AAPL", 10))
    trading.submit_order(limit("AAPL", 5, 105, OrderSide.SELL))
    assert "wash trade" in refused(trading, limit("AAPL", 1, 106), 403)
    assert "wash trade" in refused(trading, market("AAPL", 1), 403)
    assert trading.submit_order(limit("AAPL", 1, 99)).status == OrderStatus.NEW  # below it: fine
    sim.set_price("MSFT", 100)
    trading.submit_order(market("MSFT", 2))
    resting_buy = trading.submit_order(limit("MSFT", 1, 90))
    assert "wash trade" in refused(trading, limit("MSFT", 1, 89, OrderSide.SELL), 403)
    trading.cancel_order_by_id(resting_buy.id)
    short_with_buy_open = trading.submit_order(limit("NVDA", 1, 1))
    assert "long buy order is open" in refused(trading, market("NVDA", 1, OrderSide.SELL), 403)
    trading.cancel_order_by_id(short_with_buy_open.id)
    before = len(trading.get_orders(GetOrdersRequest(status="all")))
    refused(trading, limit("AAPL", 1, 107), 403)
    assert len(trading.get_orders(GetOrdersRequest(status="all"))) == before  # nothing recorded
