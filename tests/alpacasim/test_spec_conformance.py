"""Validate alpacasim's responses against Alpaca's reference OpenAPI specs (read in place, never copied).

Relaxations, kept minimal:
- OpenAPI 3.0 ``nullable: true`` becomes JSON Schema ``type: [T, "null"]`` (the spec's own meaning).
- ``format`` is not asserted (jsonschema ignores it by default); timestamps are checked by the other tests.
- ``OrderStatus`` also allows ``held``: the status of bracket legs waiting for their entry, which real
  Alpaca and alpaca-py's ``OrderStatus.HELD`` have but the spec's enum lacks.
"""

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import requests

from .conftest import PAPER_KEY, PAPER_SECRET

SPEC_DIR = (
    Path(__file__).resolve().parents[3] / "shared/reference/alpaca"
)  # repo root's parent
if not SPEC_DIR.exists():  # a git worktree one level deeper (e.g. /work/wt/<branch>)
    SPEC_DIR = Path(__file__).resolve().parents[4] / "shared/reference/alpaca"
HEADERS = {"APCA-API-KEY-ID": PAPER_KEY, "APCA-API-SECRET-KEY": PAPER_SECRET}


def _load(name: str) -> dict:
    path = SPEC_DIR / name
    if not path.exists():
        pytest.skip(f"Alpaca reference specs not found at {SPEC_DIR}")
    return json.loads(path.read_text())


def _resolve(node, schemas: dict, depth: int = 0):
    """Inline local $refs and translate OpenAPI's nullable; depth-limited for recursive schemas."""
    if isinstance(node, list):
        return [_resolve(n, schemas, depth) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        if depth > 8:
            return {}
        return _resolve(
            copy.deepcopy(schemas[node["$ref"].rsplit("/", 1)[-1]]), schemas, depth + 1
        )
    out = {
        k: _resolve(v, schemas, depth)
        for k, v in node.items()
        if k not in ("example", "x-examples")
    }
    if out.pop("nullable", False):
        if "type" in out:
            out["type"] = (
                [out["type"], "null"]
                if isinstance(out["type"], str)
                else [*out["type"], "null"]
            )
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


@pytest.fixture(scope="module")
def trading_schemas():
    schemas = _load("trading-api.json")["components"]["schemas"]
    schemas["OrderStatus"]["enum"].append("held")
    return schemas


@pytest.fixture(scope="module")
def data_schemas():
    return _load("market-data-api.json")["components"]["schemas"]


def check(schemas: dict, name: str, instance) -> None:
    schema = _resolve(schemas[name], schemas)
    jsonschema.validate(instance, schema, cls=jsonschema.Draft7Validator)


def get(sim, path: str, **params):
    resp = requests.get(sim.base_url + path, params=params, headers=HEADERS, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_trading_responses_match_the_spec(sim, trading_schemas):
    sim.set_price("AAPL", 100)
    resp = requests.post(
        sim.paper_url + "/v2/orders",
        json={
            "symbol": "AAPL",
            "qty": 2,
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
        },
        headers=HEADERS,
        timeout=5,
    )
    check(trading_schemas, "Order", resp.json())
    resting = requests.post(
        sim.paper_url + "/v2/orders",
        json={
            "symbol": "AAPL",
            "qty": 1,
            "side": "buy",
            "type": "limit",
            "limit_price": "1",
            "time_in_force": "gtc",
        },
        headers=HEADERS,
        timeout=5,
    ).json()
    check(trading_schemas, "Order", resting)
    check(trading_schemas, "Account", get(sim, "/paper/v2/account"))
    for pos in get(sim, "/paper/v2/positions"):
        check(trading_schemas, "Position", pos)
    check(trading_schemas, "Clock", get(sim, "/paper/v2/clock"))
    for day in get(sim, "/paper/v2/calendar", start="2025-01-06", end="2025-01-10"):
        check(trading_schemas, "Calendar", day)
    check(trading_schemas, "Assets", get(sim, "/paper/v2/assets/AAPL"))
    check(
        trading_schemas,
        "OptionContract",
        get(sim, "/paper/v2/options/contracts/AAPL270115C00190000"),
    )
    canceled = requests.delete(sim.paper_url + "/v2/orders", headers=HEADERS, timeout=5)
    assert canceled.status_code == 207
    for item in canceled.json():
        check(trading_schemas, "CanceledOrderResponse", item)
    missing = requests.get(
        sim.paper_url + "/v2/orders/00000000-0000-4000-8000-000000000000",
        headers=HEADERS,
        timeout=5,
    )
    check(trading_schemas, "Error", missing.json())


def test_market_data_responses_match_the_spec(sim, data_schemas):
    check(
        data_schemas,
        "stock_latest_quotes_resp",
        get(sim, "/v2/stocks/quotes/latest", symbols="AAPL,MSFT"),
    )
    check(
        data_schemas,
        "stock_latest_trades_resp",
        get(sim, "/v2/stocks/trades/latest", symbols="AAPL"),
    )
    check(
        data_schemas,
        "stock_latest_bars_resp",
        get(sim, "/v2/stocks/bars/latest", symbols="AAPL"),
    )
    bars = get(
        sim,
        "/v2/stocks/bars",
        symbols="AAPL,MSFT",
        timeframe="1Hour",
        start="2025-01-06",
        limit=20,
    )
    assert bars["next_page_token"]
    check(data_schemas, "stock_bars_resp", bars)
    check(
        data_schemas,
        "stock_snapshots_resp",
        get(sim, "/v2/stocks/snapshots", symbols="AAPL,SPY"),
    )
    check(
        data_schemas,
        "stock_latest_quotes_resp_single",
        get(sim, "/v2/stocks/AAPL/quotes/latest"),
    )
    check(
        data_schemas,
        "stock_bars_resp_single",
        get(sim, "/v2/stocks/AAPL/bars", timeframe="1Day", start="2025-01-06"),
    )
    opt = "AAPL270115C00190000"
    check(
        data_schemas,
        "option_latest_quotes_resp",
        get(sim, "/v1beta1/options/quotes/latest", symbols=opt),
    )
    check(
        data_schemas,
        "option_snapshots_resp",
        get(sim, "/v1beta1/options/snapshots", symbols=opt),
    )
    check(
        data_schemas,
        "option_snapshots_resp",
        get(sim, "/v1beta1/options/snapshots/AAPL", type="put"),
    )


def test_order_model_responses_match_the_spec(sim, trading_schemas):
    sim.set_price("AAPL", 100)

    def send(method, path, body):
        resp = requests.request(method, sim.paper_url + path, json=body, headers=HEADERS, timeout=5)
        assert resp.status_code == 200, resp.text
        check(trading_schemas, "Order", resp.json())
        return resp.json()

    bracket = send("POST", "/v2/orders", {
        "symbol": "AAPL", "qty": 2, "side": "buy", "type": "limit", "limit_price": "99",
        "time_in_force": "gtc", "order_class": "bracket",
        "take_profit": {"limit_price": "110"}, "stop_loss": {"stop_price": "95", "limit_price": "94"},
    })  # fmt: skip
    assert len(bracket["legs"]) == 2 and bracket["legs"][0]["status"] == "held"
    replaced = send("PATCH", f"/v2/orders/{bracket['id']}", {"limit_price": "98"})
    assert replaced["replaces"] == bracket["id"] and len(replaced["legs"]) == 2
    send("POST", "/v2/orders", {"symbol": "MSFT", "qty": 1, "side": "buy", "type": "trailing_stop",
                                "trail_percent": "2", "time_in_force": "gtc"})  # fmt: skip
    for order in get(sim, "/paper/v2/orders", status="all", nested="true"):
        check(trading_schemas, "Order", order)


def test_new_routes_match_the_spec(sim, trading_schemas, data_schemas):
    sim.set_price("AAPL", 100)
    requests.post(sim.paper_url + "/v2/orders", headers=HEADERS, timeout=5, json={
        "symbol": "AAPL", "qty": 2, "side": "buy", "type": "market", "time_in_force": "day"})  # fmt: skip
    for activity in get(sim, "/paper/v2/account/activities"):
        check(trading_schemas, "TradingActivities", activity)
    check(trading_schemas, "AccountConfigurations", get(sim, "/paper/v2/account/configurations"))
    check(trading_schemas, "PortfolioHistory", get(sim, "/paper/v2/account/portfolio/history"))
    window = {"start": "2025-03-04T14:00:00Z", "end": "2025-03-04T14:05:00Z", "limit": 50}
    check(data_schemas, "stock_quotes_resp", get(sim, "/v2/stocks/quotes", symbols="AAPL,MSFT", **window))
    check(data_schemas, "stock_trades_resp", get(sim, "/v2/stocks/trades", symbols="AAPL", **window))
    check(data_schemas, "stock_quotes_resp_single", get(sim, "/v2/stocks/AAPL/quotes", **window))
    check(data_schemas, "stock_trades_resp_single", get(sim, "/v2/stocks/AAPL/trades", **window))
    check(data_schemas, "stock_latest_bars_resp_single", get(sim, "/v2/stocks/AAPL/bars/latest"))
    opt = "AAPL270115C00190000"
    check(data_schemas, "option_bars_resp", get(sim, "/v1beta1/options/bars", symbols=opt, timeframe="1Min", **window))
    check(data_schemas, "option_trades_resp", get(sim, "/v1beta1/options/trades", symbols=opt, **window))
    check(data_schemas, "option_exchanges", get(sim, "/v1beta1/options/meta/exchanges"))


def test_margin_accounts_statuses_and_intraday_history_match_the_spec(sim, trading_schemas):
    sim.upsert_account(HEADERS["APCA-API-KEY-ID"], multiplier=4)
    sim.set_clock(mode="real", now="2026-11-30T15:00:00Z")  # Monday 10:00 New York
    sim.set_price("AAPL", 100)

    def post(**body):
        body = {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market", "time_in_force": "day", **body}
        return requests.post(sim.paper_url + "/v2/orders", headers=HEADERS, timeout=5, json=body).json()

    sim.control("POST", "/_sim/order_model", {"pending_new_seconds": 60})
    short = post(side="sell", qty=5, type="limit", limit_price="150", time_in_force="gtc")  # on margin
    sim.control("POST", "/_sim/order_model", {"pending_new_seconds": 0})
    resting = post(type="limit", limit_price="90", time_in_force="gtc")
    sim.set_clock(mode="real", now="2026-11-30T21:30:00Z")  # 16:30, after the close
    queued = post(symbol="MSFT")  # (an AAPL buy would cross the resting short: a wash trade)
    statuses = {o["id"]: o["status"] for o in get(sim, "/paper/v2/orders", status="all")}
    assert [statuses[o["id"]] for o in (short, resting, queued)] == ["pending_new", "done_for_day", "accepted"]
    for order in get(sim, "/paper/v2/orders", status="all"):
        check(trading_schemas, "Order", order)
    account = get(sim, "/paper/v2/account")
    assert account["multiplier"] == "4" and account["shorting_enabled"] is True
    check(trading_schemas, "Account", account)
    history = get(sim, "/paper/v2/account/portfolio/history", period="1D", timeframe="5Min")
    assert history["timeframe"] == "5Min" and len(history["timestamp"]) == 78  # 09:30-15:55
    check(trading_schemas, "PortfolioHistory", history)
