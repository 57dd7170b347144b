"""Issue 12: an order goes to the account the caller named, or nowhere.

Every endpoint that addresses an account, through the API against alpacasim, with account_id in the
query string, in the body, in both, and in both but different; for a token of account_001, a token
of account_002 and an admin token. The named account is always account_001.
"""
from __future__ import annotations

import json
import uuid

import pytest

from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

from .conftest import client_for, token
from .test_api_sim import live, sim_orders  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

NAMED, OTHER = "account_001", "account_002"
KEYS = {"account_001": "PKDEMO0000000000001", "account_002": "PKDEMO0000000000002"}
PERMS = ("account_access", "trading", "bulk_trading")
TOKENS = {
    "own": lambda: token(user_id="own", permissions=PERMS, account_id=NAMED),
    "other": lambda: token(user_id="other", permissions=PERMS, account_id=OTHER),
    "admin": lambda: token(user_id="admin", permissions=("admin",), account_id=None),
}
FORMS = ("query", "body", "both", "mismatch")
STOCK = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
LIMIT = {**STOCK, "type": "limit", "limit_price": "1.00", "time_in_force": "gtc"}


def _placed_order_id(sim) -> str:  # noqa: F811
    r = client_for(TOKENS["admin"]()).post(f"/api/v1/stocks/order?account_id={NAMED}", {**LIMIT, "client_order_id": f"pre-{uuid.uuid4().hex[:8]}"},
                                            format="json")
    assert r.status_code == 201, r.json()
    return r.json()["id"]


def _option_symbol() -> str:
    contracts = client_for().get("/api/v1/options/AAPL/chain?type=call").json()["contracts"]
    assert contracts
    return contracts[0]["symbol"]


# name -> (method, path or path factory, body factory, success status, places an order)
ENDPOINTS = {
    "stock_order": ("POST", lambda sim, coid: "/api/v1/stocks/order", lambda coid: {**STOCK, "client_order_id": coid}, 201, True),  # noqa: F811
    "option_order": ("POST", lambda sim, coid: "/api/v1/options/order",  # noqa: F811
                     lambda coid: {"option_symbol": _option_symbol(), "qty": "1", "side": "buy", "type": "market", "time_in_force": "day",
                                   "client_order_id": coid}, 201, True),
    "quick_buy": ("POST", lambda sim, coid: f"/api/v1/stocks/AAPL/buy?qty=1&client_order_id={coid}", lambda coid: {}, 201, True),  # noqa: F811
    "quick_sell": ("POST", lambda sim, coid: f"/api/v1/stocks/AAPL/sell?qty=1&client_order_id={coid}", lambda coid: {}, 201, True),  # noqa: F811
    "cancel": ("DELETE", lambda sim, coid: f"/api/v1/orders/{_placed_order_id(sim)}", lambda coid: {}, 200, False),  # noqa: F811
    "account": ("GET", lambda sim, coid: "/api/v1/account", lambda coid: {}, 200, False),  # noqa: F811
    "positions": ("GET", lambda sim, coid: "/api/v1/positions", lambda coid: {}, 200, False),  # noqa: F811
    "orders": ("GET", lambda sim, coid: "/api/v1/orders?status=all", lambda coid: {}, 200, False),  # noqa: F811
    "order_detail": ("GET", lambda sim, coid: f"/api/v1/orders/{_placed_order_id(sim)}", lambda coid: {}, 200, False),  # noqa: F811
    "bulk": ("POST", lambda sim, coid: "/api/v1/orders/bulk", lambda coid: {"stock": {**STOCK, "client_order_id": coid}}, 200, True),  # noqa: F811
}


def _with_query(path: str, account_id: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}account_id={account_id}"


def _request(client, method: str, path: str, body: dict, form: str):
    if form in ("query", "both", "mismatch"):
        path = _with_query(path, NAMED)
    if form in ("body", "both"):
        body = {**body, "account_id": NAMED}
    elif form == "mismatch":
        body = {**body, "account_id": OTHER}
    return client.generic(method, path, json.dumps(body) if body else "", content_type="application/json")


def _order_counts(sim) -> dict:  # noqa: F811
    return {a: len(sim_orders(sim, key)) for a, key in KEYS.items()}


def _expected(endpoint: str, who: str, form: str) -> tuple[int, str | None]:
    if form == "mismatch":
        return 400, "account_id_conflict"
    if who == "other" and endpoint != "bulk":  # bulk_trading may address any account (as with account_ids)
        return 403, "account_forbidden"
    return ENDPOINTS[endpoint][3], None


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("who", list(TOKENS))
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_the_named_account_or_nowhere(live, endpoint, who, form):  # noqa: F811
    method, path_for, body_for, _, places = ENDPOINTS[endpoint]
    coid = f"route-{uuid.uuid4().hex[:12]}"
    path, body = path_for(live, coid), body_for(coid)
    before = _order_counts(live)

    r = _request(client_for(TOKENS[who]()), method, path, body, form)

    status, code = _expected(endpoint, who, form)
    assert r.status_code == status, (r.status_code, r.json())
    after = _order_counts(live)
    if code:
        assert r.json()["error"]["code"] == code
        assert after == before, "a refused request must place nothing"
        return
    data = r.json()
    if places:
        # the order landed on the named account at alpacasim, and on no other
        assert [o["client_order_id"] for o in sim_orders(live, KEYS[NAMED]) if o["client_order_id"] == coid] == [coid]
        assert after[OTHER] == before[OTHER]
        placed = data["results"] if endpoint == "bulk" else [{"account_id": data["account"]["id"], "status_code": r.status_code}]
        assert [(x["account_id"], x["status_code"]) for x in placed] == [(NAMED, 201)]
    elif endpoint == "account":
        assert data["id"] == NAMED
    elif endpoint in ("positions", "orders", "cancel"):
        assert data["account"]["id"] == NAMED
    else:
        assert data["id"] == path.rsplit("/", 1)[-1]
        assert after[OTHER] == before[OTHER]


def test_bulk_account_id_must_agree_with_account_ids(live):  # noqa: F811
    c = client_for(TOKENS["admin"]())
    r = c.post(f"/api/v1/orders/bulk?account_id={NAMED}", {"stock": STOCK, "account_ids": [OTHER]}, format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "account_id_conflict", r.json()
    assert sim_orders(live, KEYS[OTHER]) == []


@pytest.mark.parametrize("value", ["", 7, ["account_001"], "x" * 65])
def test_a_malformed_account_id_is_a_400(live, value):  # noqa: F811
    r = client_for(TOKENS["own"]()).post("/api/v1/stocks/order", {**STOCK, "account_id": value}, format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] in ("invalid_request", "invalid_order"), r.json()
    assert sim_orders(live, KEYS[NAMED]) == []


def test_two_accounts_in_the_query_string_are_a_conflict(live):  # noqa: F811
    r = client_for(TOKENS["admin"]()).post(f"/api/v1/stocks/order?account_id={NAMED}&account_id={OTHER}", STOCK, format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "account_id_conflict", r.json()
    assert sim_orders(live, KEYS[NAMED]) == [] and sim_orders(live, KEYS[OTHER]) == []
