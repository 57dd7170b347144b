from datetime import date, timedelta
from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.requests import (
    OptionChainRequest,
    OptionLatestQuoteRequest,
    OptionSnapshotRequest,
)
from alpaca.trading.enums import (
    AssetClass,
    OrderSide,
    OrderStatus,
    PositionIntent,
    TimeInForce,
)
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

CONTRACT = "AAPL270115C00190000"
ILLIQUID = "AAPL270115C00400000"  # configured illiquid in demo.yml


def buy(symbol, qty, tif=TimeInForce.DAY):
    return MarketOrderRequest(
        symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=tif
    )


def sell(symbol, qty):
    return MarketOrderRequest(
        symbol=symbol, qty=qty, side=OrderSide.SELL, time_in_force=TimeInForce.DAY
    )


def test_option_buy_uses_100_multiplier(sim, trading):
    sim.set_price(CONTRACT, 5.00, bid=4.90, ask=5.10)
    order = trading.submit_order(buy(CONTRACT, 2))
    assert (
        order.status == OrderStatus.FILLED and order.asset_class == AssetClass.US_OPTION
    )
    assert Decimal(order.filled_avg_price) == Decimal("5.10")
    assert order.position_intent == PositionIntent.BUY_TO_OPEN
    acct = trading.get_account()
    assert Decimal(acct.cash) == Decimal(100000) - 2 * 100 * Decimal("5.10")
    pos = trading.get_open_position(CONTRACT)
    assert pos.asset_class == AssetClass.US_OPTION and Decimal(pos.qty) == 2
    assert Decimal(pos.market_value) == Decimal("1000.00")  # 2 x 100 x 5.00
    assert Decimal(pos.unrealized_pl) == Decimal("-20.00")
    assert Decimal(acct.equity) == Decimal(acct.cash) + Decimal("1000.00")
    closing = trading.submit_order(sell(CONTRACT, 2))
    assert Decimal(closing.filled_avg_price) == Decimal("4.90")
    assert closing.position_intent == PositionIntent.SELL_TO_CLOSE
    assert Decimal(trading.get_account().cash) == Decimal(100000) - 200 * Decimal(
        "0.20"
    )


def test_options_are_day_only(sim, trading):
    with pytest.raises(APIError) as err:
        trading.submit_order(buy(CONTRACT, 1, TimeInForce.GTC))
    assert err.value.status_code == 422 and err.value.code == 42210000


def test_options_qty_must_be_whole(sim, trading):
    with pytest.raises(APIError) as err:
        trading.submit_order(buy(CONTRACT, 1.5))
    assert err.value.status_code == 422


def test_market_sell_without_bid_is_rejected(sim, trading):
    sim.set_price(ILLIQUID, 0.05)
    trading.submit_order(buy(ILLIQUID, 1))
    with pytest.raises(APIError) as err:
        trading.submit_order(sell(ILLIQUID, 1))
    assert err.value.status_code == 422 and err.value.code == 42210000
    assert "no available bid" in err.value.message
    # a limit sell may rest instead
    resting = trading.submit_order(
        LimitOrderRequest(
            symbol=ILLIQUID, qty=1, side="sell", time_in_force="day", limit_price=0.05
        )
    )
    assert resting.status == OrderStatus.NEW


def test_illiquid_can_be_set_at_runtime(sim, trading, options):
    sim.set_price(CONTRACT, illiquid=True)
    quote = options.get_option_latest_quote(
        OptionLatestQuoteRequest(symbol_or_symbols=CONTRACT)
    )[CONTRACT]
    assert quote.bid_price == 0 and quote.bid_size == 0 and quote.ask_price > 0
    sim.set_price(CONTRACT, illiquid=False)
    quote = options.get_option_latest_quote(
        OptionLatestQuoteRequest(symbol_or_symbols=CONTRACT)
    )[CONTRACT]
    assert quote.bid_price > 0


def test_uncovered_option_sell_is_403(sim, trading):
    sim.set_price(CONTRACT, 5)
    with pytest.raises(APIError) as err:
        trading.submit_order(sell(CONTRACT, 1))
    assert err.value.status_code == 403 and err.value.code == 40310000
    trading.submit_order(buy(CONTRACT, 1))
    with pytest.raises(APIError) as err:
        trading.submit_order(sell(CONTRACT, 2))
    assert err.value.status_code == 403


def test_option_buying_power(sim, trading):
    sim.upsert_account("PKDEMO0000000000001", cash=400)
    sim.set_price(CONTRACT, 5, bid=4.9, ask=5.1)
    with pytest.raises(APIError) as err:
        trading.submit_order(buy(CONTRACT, 1))  # 510 > 400
    assert err.value.status_code == 403


def test_option_priced_from_underlying(sim, options):
    sim.set_price("AAPL", 200)
    low = options.get_option_latest_quote(
        OptionLatestQuoteRequest(symbol_or_symbols=CONTRACT)
    )[CONTRACT]
    sim.set_price("AAPL", 260)
    high = options.get_option_latest_quote(
        OptionLatestQuoteRequest(symbol_or_symbols=CONTRACT)
    )[CONTRACT]
    assert (
        high.bid_price > low.bid_price + 40
    )  # a deep in-the-money call moves with the stock
    assert low.ask_price > low.bid_price > 0


def test_option_snapshots_have_greeks(sim, options):
    sim.set_price("AAPL", 190)
    put = "AAPL270115P00190000"
    snaps = options.get_option_snapshot(
        OptionSnapshotRequest(symbol_or_symbols=[CONTRACT, put])
    )
    call_s, put_s = snaps[CONTRACT], snaps[put]
    assert 0.4 < call_s.greeks.delta < 0.8 and -0.6 < put_s.greeks.delta < -0.2
    assert (
        call_s.greeks.gamma > 0 and call_s.greeks.vega > 0 and call_s.greeks.theta < 0
    )
    assert 0.05 < call_s.implied_volatility < 2
    assert call_s.latest_quote.ask_price > call_s.latest_quote.bid_price > 0


def test_option_chain(sim, options):
    sim.set_price("AAPL", 190)
    chain = options.get_option_chain(OptionChainRequest(underlying_symbol="AAPL"))
    assert len(chain) > 50 and all(s.startswith("AAPL") for s in chain)
    assert ILLIQUID in chain and chain[ILLIQUID].latest_quote.bid_price == 0
    calls = options.get_option_chain(
        OptionChainRequest(
            underlying_symbol="AAPL",
            type="call",
            strike_price_gte=180,
            strike_price_lte=200,
        )
    )
    assert calls and all(
        s[10] == "C" and 180 <= int(s[-8:]) / 1000 <= 200 for s in calls
    )
    for snap in calls.values():
        assert snap.greeks is not None and 0 <= snap.greeks.delta <= 1
        assert snap.implied_volatility > 0
    # deltas fall as strikes rise, for one expiry
    expiry = min(s[4:10] for s in calls)
    same = sorted(
        (int(s[-8:]), snap.greeks.delta)
        for s, snap in calls.items()
        if s[4:10] == expiry
    )
    assert [d for _, d in same] == sorted((d for _, d in same), reverse=True)
    soon = date.today() + timedelta(days=10)
    near = options.get_option_chain(
        OptionChainRequest(underlying_symbol="AAPL", expiration_date_lte=soon)
    )
    assert near and len(near) < len(chain)
