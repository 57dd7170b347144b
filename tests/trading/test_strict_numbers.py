"""Issue 12: every money and quantity field reads one grammar (ASCII digits, at most one point,
bounded decimals; a JSON number or a string), through the API against alpacasim."""
from __future__ import annotations

import uuid
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

from .conftest import client_for, token
from .test_api_sim import live, sim_orders  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

OPTION = "AAPL260116C00190000"
STOCK = {"symbol": "AAPL", "side": "buy", "type": "market", "time_in_force": "day"}
OPT = {"option_symbol": OPTION, "side": "buy", "type": "market", "time_in_force": "day", "qty": "1"}

BAD = ["   ", "1_0", "١", "１", "1e3", "1E3", " 1", "1 ", "\t1", "1\n", "+1", "-1", "NaN", "nan", "Infinity", "-Infinity", "inf", True, False,
       "", "1.2.3", "0x10", "1,5", "½", "1" * 41, [1], {"v": 1}]

# (order kind, field) -> (path, body with the field set to the value)
FIELDS = {
    ("stock", "qty"): ("/api/v1/stocks/order", lambda v: {**STOCK, "qty": v}),
    ("stock", "notional"): ("/api/v1/stocks/order", lambda v: {**STOCK, "notional": v}),
    ("stock", "limit_price"): ("/api/v1/stocks/order", lambda v: {**STOCK, "qty": "1", "type": "limit", "limit_price": v}),
    ("stock", "stop_price"): ("/api/v1/stocks/order", lambda v: {**STOCK, "qty": "1", "type": "stop", "stop_price": v}),
    ("option", "qty"): ("/api/v1/options/order", lambda v: {**OPT, "qty": v}),
    ("option", "limit_price"): ("/api/v1/options/order", lambda v: {**OPT, "type": "limit", "limit_price": v}),
    ("option", "stop_price"): ("/api/v1/options/order", lambda v: {**OPT, "type": "stop", "stop_price": v}),
    ("bulk_stock", "qty"): ("/api/v1/orders/bulk", lambda v: {"stock": {**STOCK, "qty": v}, "account_ids": ["account_001"]}),
    ("bulk_stock", "limit_price"): ("/api/v1/orders/bulk",
                                    lambda v: {"stock": {**STOCK, "qty": "1", "type": "limit", "limit_price": v}, "account_ids": ["account_001"]}),
    ("bulk_option", "qty"): ("/api/v1/orders/bulk", lambda v: {"option": {**OPT, "qty": v}, "account_ids": ["account_001"]}),
}


def _client():
    return client_for(token(user_id="strict", permissions=("account_access", "trading", "bulk_trading"), account_id="account_001"))


def _field_errors(body: dict, kind: str) -> dict:
    fields = body["error"]["details"]["fields"]
    return fields[kind.split("_", 1)[1]] if kind.startswith("bulk_") else fields


@pytest.mark.parametrize(("kind", "field"), list(FIELDS))
def test_a_number_outside_the_grammar_is_a_400(live, kind, field):  # noqa: F811
    """Every value of BAD, for this field of this order kind (one test per field keeps the run short)."""
    path, body = FIELDS[(kind, field)]
    c, wrong = _client(), []
    for value in BAD:
        r = c.post(path, body(value), format="json")
        if r.status_code != 400 or r.json()["error"]["code"] != "invalid_request" or field not in _field_errors(r.json(), kind):
            wrong.append((value, r.status_code, r.json()))
    assert wrong == []
    assert sim_orders(live) == []


def test_quick_order_qty_reads_the_same_grammar(live):  # noqa: F811
    c, wrong = _client(), []
    for value in [v for v in BAD if isinstance(v, str)]:
        r = c.post(f"/api/v1/stocks/AAPL/buy?{urlencode({'qty': value})}")
        if r.status_code != 400 or "qty" not in r.json()["error"]["details"].get("fields", {}):
            wrong.append((value, r.status_code, r.json()))
    assert wrong == []
    assert sim_orders(live) == []


@pytest.mark.parametrize(("value", "expected"), [("2", Decimal("2")), (2, Decimal("2")), (2.0, Decimal("2")), ("0.5", Decimal("0.5")),
                                                 (0.5, Decimal("0.5")), (".5", Decimal("0.5")), ("3.", Decimal("3"))])
def test_a_number_inside_the_grammar_reaches_the_broker_as_written(live, value, expected):  # noqa: F811
    coid = f"strict-{uuid.uuid4().hex[:10]}"
    r = _client().post("/api/v1/stocks/order", {**STOCK, "qty": value, "client_order_id": coid}, format="json")
    assert r.status_code == 201, r.json()
    placed = [o for o in sim_orders(live) if o["client_order_id"] == coid]
    assert [Decimal(str(o["qty"])) for o in placed] == [expected]


def test_prices_as_json_numbers_and_strings(live):  # noqa: F811
    c = _client()
    for price in (1.25, "1.25"):
        r = c.post("/api/v1/stocks/order", {**STOCK, "qty": "1", "type": "limit", "limit_price": price, "time_in_force": "gtc"}, format="json")
        assert r.status_code == 201, r.json()
        assert Decimal(r.json()["limit_price"]) == Decimal("1.25")


def test_too_many_decimals_is_a_400(live):  # noqa: F811
    r = _client().post("/api/v1/stocks/order", {**STOCK, "notional": "10.001"}, format="json")
    assert r.status_code == 400 and "notional" in r.json()["error"]["details"]["fields"]
