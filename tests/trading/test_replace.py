"""Issue 17: PATCH /api/v1/orders/{id} replaces an open order through the order pipeline, over real HTTP to
alpacasim: its own OrderRecord (action=replace) linked to the replaced order's, its audit event, the
pre-trade checks and idempotency; broker refusals map as the other broker errors do."""
from __future__ import annotations

import pytest

from audit.models import AuditEvent
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from trading.models import OrderRecord

from .conftest import client_for, token
from .test_api_sim import live, sim_orders, trader  # noqa: F401 - fixtures and helpers
from .test_order_classes import detail, wait_for

pytestmark = pytest.mark.django_db

LIMIT = {"symbol": "AAPL", "qty": "5", "side": "buy", "type": "limit", "limit_price": "90", "time_in_force": "gtc"}


def place(c, body=LIMIT, **extra) -> dict:
    r = c.post("/api/v1/stocks/order", {**body, **extra}, format="json")
    assert r.status_code == 201, r.json()
    return r.json()


def test_replace_gets_its_own_record_linked_to_the_replaced_one(live):  # noqa: F811 - the live fixture
    live.set_price("AAPL", 100)
    c = trader()
    old = place(c, client_order_id="first")
    r = c.patch(f"/api/v1/orders/{old['id']}", {"qty": "3", "limit_price": "91.5", "client_order_id": "second"}, format="json")
    assert r.status_code == 201, r.json()
    new = r.json()
    assert new["id"] != old["id"] and new["replaces"] == old["id"] and new["client_order_id"] == "second"
    assert (new["qty"], new["limit_price"], new["status"]) == ("3", "91.5", "new")
    assert new["timing"]["broker_ms"] > 0 and new["checks"]["balance"]["status"] == "passed" and new["replayed"] is False

    # both records: the replacement is its own attempt, linked by FK and by the broker id
    first, second = OrderRecord.objects.get(client_order_id="first"), OrderRecord.objects.get(client_order_id="second")
    assert second.action == "replace" and second.replaces_id == first.pk and second.replaces_order_id == old["id"]
    assert second.outcome == "accepted" and second.broker_order_id == new["id"] and second.http_status == 201
    assert (second.qty, second.limit_price, second.symbol, second.side) == (3, 91.5, "AAPL", "buy")
    assert first.action == "place" and first.broker_status == "pending_replace"
    assert list(first.replacements.all()) == [second]
    # the audit event of the replacement says what it replaced
    event = AuditEvent.objects.get(action="order.submitted", object_id=str(second.pk))
    assert event.data["order"]["action"] == "replace" and event.data["order"]["replaces"] == old["id"]
    # the broker holds the new order, the old one ended replaced
    at_broker = {o["client_order_id"]: o for o in sim_orders(live)}
    assert at_broker["first"]["status"] == "replaced" and at_broker["first"]["replaced_by"] == new["id"]
    assert at_broker["second"]["status"] == "new" and at_broker["second"]["replaces"] == old["id"]
    replaced = detail(c, old["id"])
    assert replaced["status"] == "replaced" and replaced["replaced_by"] == new["id"]

    # the same PATCH again is a replay: no broker call, no new record
    again = c.patch(f"/api/v1/orders/{old['id']}", {"qty": "3", "limit_price": "91.5", "client_order_id": "second"}, format="json")
    assert again.status_code == 201 and again.json()["replayed"] is True and again.json()["id"] == new["id"]
    assert OrderRecord.objects.count() == 2 and len(sim_orders(live)) == 2
    # the same client_order_id for a different change is a conflict, never a replay
    clash = c.patch(f"/api/v1/orders/{old['id']}", {"qty": "4", "client_order_id": "second"}, format="json")
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "idempotency_conflict"


def test_the_replacement_fills_like_any_order(live):  # noqa: F811 - the live fixture
    live.set_price("AAPL", 100)
    c = trader()
    old = place(c)
    new = c.patch(f"/api/v1/orders/{old['id']}", {"limit_price": "101"}, format="json").json()
    assert new["client_order_id"].startswith("opt-")  # generated, like a new order's
    wait_for(lambda: detail(c, new["id"]), lambda o: o["status"] == "filled", "the replacement filled")


def test_a_trailing_stop_is_replaced_with_a_new_trail(live):  # noqa: F811 - the live fixture
    live.set_price("AAPL", 100)
    c = trader()
    place(c, {"symbol": "AAPL", "qty": "10", "side": "buy", "type": "market", "time_in_force": "day"})
    trail = place(c, {"symbol": "AAPL", "qty": "10", "side": "sell", "type": "trailing_stop", "trail_percent": "5", "time_in_force": "gtc"})
    r = c.patch(f"/api/v1/orders/{trail['id']}", {"trail": "10", "time_in_force": "day"}, format="json")
    assert r.status_code == 201, r.json()
    assert (r.json()["trail_percent"], r.json()["stop_price"], r.json()["time_in_force"]) == ("10", "90", "day")
    rec = OrderRecord.objects.get(broker_order_id=r.json()["id"])
    assert rec.trail_percent == 10 and rec.order_type == "trailing_stop" and rec.time_in_force == "day"


def test_a_bracket_leg_the_gateway_has_no_record_of_is_read_from_the_broker(live):  # noqa: F811 - the live fixture
    live.set_price("AAPL", 100)
    c = trader()
    parent = place(c, {**LIMIT, "order_class": "bracket", "take_profit": {"limit_price": "110"}, "stop_loss": {"stop_price": "80"}})
    stop_leg = parent["legs"][1]
    r = c.patch(f"/api/v1/orders/{stop_leg['id']}", {"stop_price": "85"}, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["stop_price"] == "85" and r.json()["order_class"] == "bracket"
    rec = OrderRecord.objects.get(broker_order_id=r.json()["id"])
    assert rec.replaces_id is None and rec.replaces_order_id == stop_leg["id"] and rec.side == "sell"
    assert [leg["stop_price"] for leg in detail(c, parent["id"])["legs"]] == [None, "85"]


def test_broker_refusals_are_recorded_and_mapped(live):  # noqa: F811 - the live fixture
    live.set_price("AAPL", 100)
    c = trader()
    filled = place(c, {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"})
    r = c.patch(f"/api/v1/orders/{filled['id']}", {"qty": "2"}, format="json")
    assert r.status_code == 422 and r.json()["error"]["code"] == "broker_rejected", r.json()
    assert "filled" in r.json()["error"]["message"]
    rec = OrderRecord.objects.get(action="replace")
    assert rec.outcome == "rejected" and rec.replaces_order_id == filled["id"] and rec.error_code == "broker_rejected"
    assert AuditEvent.objects.filter(action="order.rejected", object_id=str(rec.pk)).exists()
    # an order the gateway does not know and the broker does not have
    missing = c.patch("/api/v1/orders/00000000-0000-4000-8000-000000000000", {"qty": "1"}, format="json")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_the_pre_trade_checks_apply_to_the_new_notional(live, config_file):  # noqa: F811 - the live fixture
    live.set_price("AAPL", 100)
    config_file.set("trading", max_order_notional=1000)
    c = trader()
    old = place(c)  # 5 x 90 = 450
    r = c.patch(f"/api/v1/orders/{old['id']}", {"qty": "20"}, format="json")  # 20 x 90 = 1,800
    assert r.status_code == 400 and r.json()["error"]["code"] == "order_limit_exceeded", r.json()
    rec = OrderRecord.objects.get(action="replace")
    assert rec.outcome == "refused" and rec.submitted_at is None and rec.replaces_order_id == old["id"]
    assert AuditEvent.objects.filter(action="order.refused", object_id=str(rec.pk)).exists()
    assert detail(c, old["id"])["status"] == "new"  # nothing reached the broker


@pytest.mark.parametrize("change, field", [
    ({}, "qty"),
    ({"qty": "1.5"}, "qty"),
    ({"stop_price": "80"}, "stop_price"),
    ({"trail": "1"}, "trail"),
    ({"client_order_id": "opt-mine", "qty": "1"}, "client_order_id"),
    ({"time_in_force": "forever"}, "time_in_force"),
])
def test_invalid_replacements_are_400_before_the_broker(live, change, field):  # noqa: F811 - the live fixture
    live.set_price("AAPL", 100)
    c = trader()
    old = place(c)
    r = c.patch(f"/api/v1/orders/{old['id']}", change, format="json")
    assert r.status_code == 400, r.json()
    assert field in r.json()["error"]["details"]["fields"], r.json()
    assert not OrderRecord.objects.filter(action="replace").exists()
    assert detail(c, old["id"])["status"] == "new"


def test_same_permissions_as_placing(live):  # noqa: F811 - the live fixture
    live.set_price("AAPL", 100)
    old = place(trader())
    read_only = client_for(token(user_id="reader", permissions=("account_access",), account_id="account_001"))
    assert read_only.patch(f"/api/v1/orders/{old['id']}", {"qty": "1"}, format="json").status_code == 403
    other = trader("account_002")
    r = other.patch(f"/api/v1/orders/{old['id']}?account_id=account_001", {"qty": "1"}, format="json")
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_forbidden"
    admin = client_for(token(user_id="admin", permissions=("admin",), account_id=None))
    r = admin.patch(f"/api/v1/orders/{old['id']}?account_id=account_001", {"qty": "1"}, format="json")
    assert r.status_code == 201, r.json()
    assert not OrderRecord.objects.filter(action="replace").exclude(user_id="admin").exists()


def test_an_opted_in_option_buy_stays_opted_in_when_replaced(live):  # noqa: F811 - the live fixture
    c = trader()
    symbol = c.get("/api/v1/options/AAPL/chain?type=call").json()["contracts"][0]["symbol"]
    r = c.post("/api/v1/options/order", {"option_symbol": symbol, "qty": "1", "side": "buy", "type": "limit", "limit_price": "0.01",
                                         "time_in_force": "day", "auto_sell_enabled": True}, format="json")
    assert r.status_code == 201, r.json()
    new = c.patch(f"/api/v1/orders/{r.json()['id']}", {"limit_price": "0.02", "qty": "2"}, format="json")
    assert new.status_code == 201, new.json()
    rec = OrderRecord.objects.get(broker_order_id=new.json()["id"])
    assert rec.auto_sell_enabled and rec.asset_class == "us_option" and rec.qty == 2 and rec.action == "replace"
