"""Every alpaca-py 0.44 REST method on stocks and options, against alpacasim, asserted on parsed values.

The methods left out (and why) are listed in alpacasim/README.md, "alpaca-py coverage"; the stream
clients are covered by the stream tests. COVERED below is checked against the SDK so a new method in
alpaca-py (or one dropped here) fails loudly.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from alpaca.common.enums import Sort
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import (
    OptionBarsRequest,
    OptionChainRequest,
    OptionLatestQuoteRequest,
    OptionLatestTradeRequest,
    OptionSnapshotRequest,
    OptionTradesRequest,
    StockBarsRequest,
    StockLatestBarRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
    StockQuotesRequest,
    StockSnapshotRequest,
    StockTradesRequest,
)
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetAssetsRequest,
    GetCalendarRequest,
    GetOptionContractsRequest,
    GetOrdersRequest,
    ReplaceOrderRequest,
)

from .test_orders import limit, market

OPTION = "AAPL270115C00190000"
DAY = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 New York

NOT_COVERED = {  # method: reason (as in alpacasim/README.md)
    "get_watchlists": "watchlists", "get_watchlist_by_id": "watchlists",
    "create_watchlist": "watchlists", "update_watchlist_by_id": "watchlists",
    "add_asset_to_watchlist_by_id": "watchlists", "delete_watchlist_by_id": "watchlists",
    "remove_asset_from_watchlist_by_id": "watchlists",
    "get_corporate_announcements": "corporate actions",
    "get_corporate_announcement_by_id": "corporate actions",
}  # fmt: skip
COVERED = {
    "submit_order", "get_orders", "get_order_by_id", "get_order_by_client_id", "replace_order_by_id",
    "cancel_orders", "cancel_order_by_id", "get_all_positions", "get_open_position",
    "close_all_positions", "close_position", "exercise_options_position", "get_all_assets",
    "get_asset", "get_clock", "get_calendar", "get_account", "get_account_configurations",
    "set_account_configurations", "get_option_contracts", "get_option_contract",
    "get_stock_bars", "get_stock_quotes", "get_stock_trades", "get_stock_latest_trade",
    "get_stock_latest_quote", "get_stock_latest_bar", "get_stock_snapshot",
    "get_option_exchange_codes", "get_option_latest_quote", "get_option_latest_trade",
    "get_option_snapshot", "get_option_chain", "get_option_bars", "get_option_trades",
    "get_portfolio_history",
}  # fmt: skip


def _public_methods(cls) -> set[str]:
    own = set(vars(cls))
    return {m for m in own if not m.startswith("_") and callable(getattr(cls, m))}


def test_the_lists_match_alpaca_py_and_coverage_is_at_least_90_percent():
    sdk = set().union(
        *(_public_methods(c) for c in (TradingClient, StockHistoricalDataClient, OptionHistoricalDataClient))
    )
    assert COVERED | set(NOT_COVERED) == sdk
    relevant = COVERED | {m for m, why in NOT_COVERED.items() if why.startswith("not yet")}
    assert len(COVERED) / len(relevant) >= 0.9, (len(COVERED), len(relevant))  # now all 36


def test_orders_and_positions(sim, trading):
    sim.set_price("AAPL", 100)
    buy = trading.submit_order(market("AAPL", 10, client_order_id="cov-1"))
    assert buy.status == OrderStatus.FILLED and Decimal(buy.filled_qty) == 10
    assert trading.get_order_by_id(buy.id).client_order_id == "cov-1"
    assert trading.get_order_by_client_id("cov-1").id == buy.id
    rest = trading.submit_order(limit("AAPL", 1, 50))
    new = trading.replace_order_by_id(rest.id, ReplaceOrderRequest(limit_price=51))
    assert Decimal(new.limit_price) == 51 and str(new.replaces) == str(rest.id)
    assert [o.id for o in trading.get_orders(GetOrdersRequest(status="open"))] == [new.id]
    assert trading.cancel_order_by_id(new.id) is None
    again = trading.submit_order(limit("AAPL", 1, 50))
    assert [str(r.id) for r in trading.cancel_orders()] == [str(again.id)]
    (pos,) = trading.get_all_positions()
    assert pos.symbol == "AAPL" and Decimal(pos.qty) == 10
    assert trading.get_open_position(pos.asset_id).symbol == "AAPL"  # by asset id
    half = trading.close_position("AAPL", ClosePositionRequest(qty="4"))
    assert Decimal(half.qty) == 4 and half.side == OrderSide.SELL
    closed = trading.close_all_positions(cancel_orders=True)
    assert [c.symbol for c in closed] == ["AAPL"] and closed[0].status == 200
    assert trading.get_all_positions() == []


def test_activities_record_fills(sim, trading):
    sim.set_price("AAPL", 100)
    trading.submit_order(market("AAPL", 3))
    trading.submit_order(market("AAPL", 1, OrderSide.SELL))
    fills = trading.get("/account/activities/FILL")
    assert [(a["side"], a["qty"], a["price"]) for a in fills] == [("sell", "1", "99.99"), ("buy", "3", "100.01")]
    assert all(a["activity_type"] == "FILL" and a["type"] == "fill" for a in fills)
    asc = trading.get("/account/activities", {"activity_types": "FILL", "direction": "asc", "page_size": 1})
    assert [a["side"] for a in asc] == ["buy"]
    rest = trading.get("/account/activities", {"direction": "asc", "page_token": asc[0]["id"]})
    assert [a["side"] for a in rest] == ["sell"]


def test_option_exercise_and_contract_lookups(sim, trading):
    contract = trading.get_option_contract(OPTION)
    assert trading.get_option_contract(contract.id).symbol == OPTION  # by contract id
    listed = trading.get_option_contracts(GetOptionContractsRequest(underlying_symbols=["AAPL"], limit=5))
    assert len(listed.option_contracts) == 5 and listed.next_page_token
    sim.set_price(OPTION, 12)
    sim.set_price("AAPL", 210)
    trading.submit_order(market(OPTION, 1))
    cash = Decimal(trading.get_account().cash)
    assert trading.get_open_position(contract.id).symbol == OPTION
    trading.exercise_options_position(OPTION)
    (shares,) = trading.get_all_positions()
    assert shares.symbol == "AAPL" and Decimal(shares.qty) == 100 and Decimal(shares.avg_entry_price) == 190
    assert Decimal(trading.get_account().cash) == cash - 19000
    assert trading.get("/account/activities/OPEXC")[0]["symbol"] == OPTION


def test_account_assets_clock_calendar(sim, trading):
    acct = trading.get_account()
    assert Decimal(acct.cash) == 100000 and acct.account_number.startswith("PA")
    conf = trading.get_account_configurations()
    conf.no_shorting = True
    assert trading.set_account_configurations(conf).no_shorting is True
    assert trading.get_account_configurations().no_shorting is True
    assets = trading.get_all_assets(GetAssetsRequest())
    assert "AAPL" in {a.symbol for a in assets}
    assert trading.get_asset("AAPL").tradable is True
    assert trading.get_clock().is_open is True  # the harness runs always open
    history = trading.get_portfolio_history()  # always open: no closes, only the current equity
    assert history.equity == [100000.0] and history.timeframe == "1D"
    days = trading.get_calendar(GetCalendarRequest(start=DAY.date(), end=DAY.date() + timedelta(days=6)))
    assert len(days) == 5


def test_stock_data(sim, stocks):
    sim.set_clock(mode="real", now=DAY.isoformat())
    one = StockLatestQuoteRequest(symbol_or_symbols="AAPL")
    quote = stocks.get_stock_latest_quote(one)["AAPL"]
    assert 0 < quote.bid_price < quote.ask_price
    trade = stocks.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert quote.bid_price <= trade.price <= quote.ask_price
    bar = stocks.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert bar.low <= bar.close <= bar.high
    assert stocks.get("/stocks/AAPL/bars/latest")["bar"]["c"] == bar.close  # the single-symbol route
    snap = stocks.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert snap.latest_quote.ask_price == quote.ask_price
    window = {"symbol_or_symbols": "AAPL", "start": DAY - timedelta(minutes=5), "end": DAY - timedelta(minutes=1)}
    quotes = stocks.get_stock_quotes(StockQuotesRequest(**window, limit=30))["AAPL"]
    assert len(quotes) == 30 and all(q.bid_price < q.ask_price for q in quotes)
    assert quotes[0].timestamp == window["start"] and quotes[1].timestamp - quotes[0].timestamp == timedelta(seconds=1)
    trades = stocks.get_stock_trades(StockTradesRequest(**window, limit=30))["AAPL"]
    assert [t.timestamp for t in trades] == [q.timestamp for q in quotes]
    paged = stocks.get_stock_quotes(StockQuotesRequest(**window))["AAPL"]  # alpaca-py follows the pages
    assert len(paged) == 4 * 60 + 1
    minutes = stocks.get_stock_bars(StockBarsRequest(**window, timeframe=TimeFrame.Minute))["AAPL"]
    desc = stocks.get_stock_bars(StockBarsRequest(**window, timeframe=TimeFrame.Minute, sort=Sort.DESC))["AAPL"]
    assert [b.timestamp for b in desc] == [b.timestamp for b in reversed(minutes)]


def test_option_data(sim, options):
    quote = options.get_option_latest_quote(OptionLatestQuoteRequest(symbol_or_symbols=OPTION))[OPTION]
    assert 0 < quote.bid_price < quote.ask_price
    trade = options.get_option_latest_trade(OptionLatestTradeRequest(symbol_or_symbols=OPTION))[OPTION]
    assert trade.price > 0
    snap = options.get_option_snapshot(OptionSnapshotRequest(symbol_or_symbols=OPTION))[OPTION]
    assert snap.greeks.delta > 0 and snap.implied_volatility > 0
    chain = options.get_option_chain(OptionChainRequest(underlying_symbol="AAPL", type="put"))
    assert chain and all("P" in s[-9:] for s in chain)
    codes = options.get_option_exchange_codes()
    assert codes["C"].startswith("CBOE") and len(codes) > 10
    window = {"symbol_or_symbols": OPTION, "start": DAY - timedelta(hours=1), "end": DAY}
    bars = options.get_option_bars(OptionBarsRequest(**window, timeframe=TimeFrame.Minute))[OPTION]
    assert len(bars) == 61 and all(0 < b.low <= min(b.open, b.close) <= b.high for b in bars)
    trades = options.get_option_trades(OptionTradesRequest(**window, limit=120))[OPTION]
    assert len(trades) == 120 and trades[0].price == bars[0].open  # the same model at the same instant
