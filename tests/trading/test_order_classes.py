"""Issue 17: bracket, oco and oto orders and trailing stops through the API, over real HTTP to alpacasim
(APIClient -> DRF -> order pipeline -> alpaca-py -> alpacasim). The sim's price is driven through its
/_sim/price control endpoint; tests wait for the broker's state, never sleep."""
from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from trading.intents import OrderIntent
from trading.models import OrderRecord

from .test_api_sim import live, sim_orders, trader  # noqa: F401 - fixtures and helpers

pytestmark = pytest.mark.django_db

DEADLINE = 30.0


def wait_for(fetch, done, what: str):
    """Poll ``fetch()`` until ``done(value)``; fail with the last value after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached in {DEADLINE}s; last: {value}")
        time.sleep(0.1)


def detail(client, order_id: str) -> dict:
    r = client.get(f"/api/v1/orders/{order_id}")
    assert r.status_code == 200, r.json()
    return r.json()


def test_bracket_whose_take_profit_fills_cancels_the_stop(live):  # noqa: F811 - the live fixture
    live.set_price("AAPL", 100)
    c = trader()
    body = {"symbol": "AAPL", "qty": "10", "side": "buy", "type": "limit", "limit_price": "99", "time_in_force": "gtc",
            "order_class": "bracket", "take_profit": {"limit_price": "110"}, "stop_loss": {"stop_price": "95", "limit_price": "94.5"},
            "client_order_id": "bracket-1"}
    r = c.post("/api/v1/stocks/order", body, format="json")
    assert r.status_code == 201, r.json()
    placed = r.json()
    assert placed["order_class"] == "bracket" and placed["status"] == "new"
    tp, sl = placed["legs"]
    assert (tp["type"], tp["side"], tp["limit_price"], tp["status"]) == ("limit", "sell", "110", "held")
    assert (sl["type"], sl["stop_price"], sl["limit_price"], sl["status"]) == ("stop_limit", "95", "94.5", "held")

    rec = OrderRecord.objects.get(client_order_id="bracket-1")
    assert rec.order_class == "bracket" and rec.outcome == "accepted" and rec.action == "place"
    assert rec.legs["take_profit"] == {"limit_price": "110"}
    assert rec.legs["stop_loss"] == {"stop_price": "95", "limit_price": "94.5"}
    assert [leg["id"] for leg in rec.legs["broker"]] == [tp["id"], sl["id"]]
    event = AuditEvent.objects.get(action="order.submitted", object_id=str(rec.pk))
    assert event.data["order"]["order_class"] == "bracket" and event.data["order"]["take_profit"] == {"limit_price": "110"}

    # the order detail shows the legs; the entry fills, the legs go live
    assert [leg["id"] for leg in detail(c, placed["id"])["legs"]] == [tp["id"], sl["id"]]
    live.set_price("AAPL", 98.5)
    filled = wait_for(lambda: detail(c, placed["id"]), lambda o: o["status"] == "filled", "the entry filled")
    assert {leg["status"] for leg in filled["legs"]} == {"new"}
    # the price walks up through the take-profit: it fills and the stop-loss is canceled
    live.set_price("AAPL", 111)
    done = wait_for(lambda: detail(c, placed["id"]), lambda o: o["legs"][0]["status"] == "filled", "the take-profit filled")
    assert done["legs"][1]["status"] == "canceled"
    assert Decimal(done["legs"][0]["filled_avg_price"]) >= 110


def test_trailing_stop_follows_the_walk_then_triggers(live):  # noqa: F811 - the live fixture
    live.set_price("AAPL", 100)
    c = trader()
    assert c.post("/api/v1/stocks/order", {"symbol": "AAPL", "qty": "10", "side": "buy", "type": "market", "time_in_force": "day"},
                  format="json").status_code == 201
    r = c.post("/api/v1/stocks/order", {"symbol": "AAPL", "qty": "10", "side": "sell", "type": "trailing_stop", "trail_price": "2",
                                        "time_in_force": "gtc", "client_order_id": "trail-1"}, format="json")
    assert r.status_code == 201, r.json()
    placed = r.json()
    assert (placed["type"], placed["trail_price"], placed["hwm"], placed["stop_price"]) == ("trailing_stop", "2", "100", "98")
    rec = OrderRecord.objects.get(client_order_id="trail-1")
    assert rec.order_type == "trailing_stop" and rec.trail_price == 2 and rec.trail_percent is None

    live.set_price("AAPL", 110)  # the high-water mark and the stop follow the walk up
    moved = wait_for(lambda: detail(c, placed["id"]), lambda o: o["hwm"] == "110", "the high-water mark moved")
    assert moved["stop_price"] == "108" and moved["status"] == "new"
    live.set_price("AAPL", 109)  # a dip above the stop neither lowers it nor triggers
    assert detail(c, placed["id"])["stop_price"] == "108"
    live.set_price("AAPL", 107.5)  # through the stop: it triggers and sells
    fired = wait_for(lambda: detail(c, placed["id"]), lambda o: o["status"] == "filled", "the trailing stop filled")
    assert fired["hwm"] == "110" and fired["filled_qty"] == "10"


def test_trailing_percent_oco_and_oto_reach_the_broker(live):  # noqa: F811 - the live fixture
    live.set_price("AAPL", 100)
    c = trader()
    assert c.post("/api/v1/stocks/order", {"symbol": "AAPL", "qty": "20", "side": "buy", "type": "market", "time_in_force": "day"},
                  format="json").status_code == 201
    pct = c.post("/api/v1/stocks/order", {"symbol": "AAPL", "qty": "5", "side": "sell", "type": "trailing_stop", "trail_percent": "5",
                                          "time_in_force": "day"}, format="json")
    assert pct.status_code == 201, pct.json()
    assert pct.json()["trail_percent"] == "5" and pct.json()["stop_price"] == "95"
    # an oco exit of a long: its limit is the take-profit (no limit_price needed), its leg the stop-loss
    oco = c.post("/api/v1/stocks/order", {"symbol": "AAPL", "qty": "5", "side": "sell", "type": "limit", "time_in_force": "gtc",
                                          "order_class": "oco", "take_profit": {"limit_price": "120"},
                                          "stop_loss": {"stop_price": "90"}}, format="json")
    assert oco.status_code == 201, oco.json()
    assert oco.json()["limit_price"] == "120" and [leg["stop_price"] for leg in oco.json()["legs"]] == ["90"]
    oto = c.post("/api/v1/stocks/order", {"symbol": "AAPL", "qty": "3", "side": "buy", "type": "limit", "limit_price": "90",
                                          "time_in_force": "gtc", "order_class": "oto", "stop_loss": {"stop_price": "80"}},
                 format="json")
    assert oto.status_code == 201, oto.json()
    assert [leg["type"] for leg in oto.json()["legs"]] == ["stop"]
    classes = {o["client_order_id"]: o["order_class"] for o in sim_orders(live)}
    assert sorted(classes.values()).count("oco") >= 1 and "oto" in classes.values()


STOCK = {"symbol": "AAPL", "qty": "10", "side": "buy", "type": "limit", "limit_price": "100", "time_in_force": "gtc"}
BRACKET = {**STOCK, "order_class": "bracket", "take_profit": {"limit_price": "110"}, "stop_loss": {"stop_price": "95"}}
TRAIL = {"symbol": "AAPL", "qty": "10", "side": "sell", "type": "trailing_stop", "trail_price": "2", "time_in_force": "gtc"}


@pytest.mark.parametrize("body, field, words", [
    ({**BRACKET, "take_profit": None}, "take_profit", "needs take_profit"),
    ({**BRACKET, "stop_loss": None}, "stop_loss", "needs stop_loss"),
    ({**BRACKET, "take_profit": {"limit_price": "90"}}, "take_profit", "above stop_loss"),
    ({**BRACKET, "take_profit": {"limit_price": "99"}, "stop_loss": {"stop_price": "90"}}, "take_profit", "above the entry price"),
    ({**BRACKET, "stop_loss": {"stop_price": "101"}, "take_profit": {"limit_price": "120"}}, "stop_loss", "below the entry price"),
    ({**BRACKET, "side": "sell", "take_profit": {"limit_price": "110"}, "stop_loss": {"stop_price": "120"}}, "take_profit", "below"),
    ({**BRACKET, "time_in_force": "ioc"}, "time_in_force", "day or gtc"),
    ({**BRACKET, "qty": "1.5"}, "qty", "whole number"),
    ({**BRACKET, "type": "trailing_stop", "limit_price": None, "trail_price": "1"}, "type", "entry must be"),
    ({**BRACKET, "order_class": "oto"}, "take_profit", "exactly one of take_profit or stop_loss"),
    ({**BRACKET, "order_class": "oco"}, "limit_price", "take_profit.limit_price"),
    ({**BRACKET, "order_class": "oco", "type": "market", "limit_price": None}, "type", "must be limit"),
    ({**STOCK, "take_profit": {"limit_price": "110"}}, "take_profit", "set order_class"),
    ({**STOCK, "order_class": "triangle"}, "order_class", ""),
    ({**TRAIL, "trail_percent": "1"}, "trail_price", "exactly one"),
    ({**TRAIL, "trail_price": None}, "trail_price", "exactly one"),
    ({**TRAIL, "trail_price": None, "trail_percent": "100"}, "trail_percent", "less than 100"),
    ({**TRAIL, "time_in_force": "ioc"}, "time_in_force", "day or gtc"),
    ({**TRAIL, "stop_price": "90"}, "stop_price", "not allowed for trailing_stop"),
    ({**TRAIL, "qty": "0.5"}, "qty", "whole number"),
    ({**STOCK, "trail_price": "1"}, "trail_price", "trailing_stop orders only"),
])
def test_each_validation_refusal_is_a_400_before_any_record(live, body, field, words):  # noqa: F811 - the live fixture
    body = {k: v for k, v in body.items() if v is not None}
    r = trader().post("/api/v1/stocks/order", body, format="json")
    assert r.status_code == 400, r.json()
    fields = r.json()["error"]["details"]["fields"]
    assert field in fields, fields
    assert words in str(fields[field]), fields
    assert not OrderRecord.objects.exists() and sim_orders(live) == []


def test_option_orders_stay_simple(live):  # noqa: F811 - the live fixture
    r = trader().post("/api/v1/options/order", {"option_symbol": "AAPL260116C00190000", "qty": "1", "side": "buy",
                                                "type": "trailing_stop", "trail_price": "1", "time_in_force": "day"}, format="json")
    assert r.status_code == 400 and "type" in r.json()["error"]["details"]["fields"]


def test_a_simple_orders_fingerprint_is_unchanged_and_a_class_or_a_replacement_changes_it():
    """Stored intent_hash values must still match their orders after the upgrade (a retry would be a 409 otherwise)."""
    simple = OrderIntent(symbol="AAPL", side="buy", type="limit", time_in_force="day", qty=Decimal("1.5"), limit_price=Decimal("180.00"))
    assert simple.fingerprint == "7f235e32190eab026e188aed3535ee1a1543fcffec5f93d38e2d55425fad2cee"  # as before issue 17
    bracket = replace(simple, order_class="bracket", take_profit_limit_price=Decimal(200), stop_loss_stop_price=Decimal(170))
    replacement = replace(simple, replaces="6c1f0d5e-0000-4000-8000-000000000001")
    assert len({simple.fingerprint, bracket.fingerprint, replacement.fingerprint}) == 3
