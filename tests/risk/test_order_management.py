"""Cancel-all, close-position(s) and flatten against alpacasim."""
from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import AlpacaAccount
from audit.models import AuditEvent
from risk.states import trading_state_get
from tests.audit.conftest import requires_postgres
from trading.models import OrderRecord

from .conftest import admin, buy, client_for, set_state, token, trader

pytestmark = pytest.mark.django_db

KEYS = {"account_001": ("PKDEMO0000000000001", "demo-secret-0000000001"),
        "account_002": ("PKDEMO0000000000002", "demo-secret-0000000002"),
        "account_003": ("PKDEMO0000000000003", "demo-secret-0000000003")}


def _positions(account_id: str) -> dict[str, Decimal]:
    body = trader(account_id).get("/api/v1/positions").json()
    return {p["symbol"]: Decimal(p["qty"]) for p in body["positions"]}


def _open_orders(account_id: str) -> list[dict]:
    return trader(account_id).get("/api/v1/orders?status=open").json()["orders"]


def test_cancel_all_cancels_every_open_order_with_per_order_results(live):
    c = trader()
    ids = {buy(c, type="limit", limit_price="1.00", time_in_force="gtc").json()["id"] for _ in range(3)}
    r = c.delete("/api/v1/orders")
    assert r.status_code == 200, r.json()
    body = r.json()
    assert {row["order_id"] for row in body["results"]} == ids
    assert body["summary"] == {"orders": 3, "canceled": 3, "failed": 0}
    assert _open_orders("account_001") == []
    assert AuditEvent.objects.filter(action="order.cancelled").count() == 3


def test_cancel_all_needs_trading_and_the_own_account(live):
    reader = client_for(token(user_id="r", permissions=("account_access",), account_id="account_001"))
    assert reader.delete("/api/v1/orders").status_code == 403
    assert trader().delete("/api/v1/orders?account_id=account_002").status_code == 403


def test_close_position_by_qty_percentage_and_whole(live):
    c = trader()
    assert buy(c, qty="10").status_code == 201
    r = c.delete("/api/v1/positions/AAPL?qty=2")
    assert r.status_code == 201, r.json()
    assert r.json()["side"] == "sell" and Decimal(r.json()["qty"]) == 2
    assert _positions("account_001")["AAPL"] == 8
    r = c.delete("/api/v1/positions/AAPL?percentage=50")
    assert r.status_code == 201 and Decimal(r.json()["qty"]) == 4
    r = c.delete("/api/v1/positions/AAPL?qty=99")
    assert r.status_code == 422 and r.json()["error"]["code"] == "close_qty_exceeds_position"
    r = c.delete("/api/v1/positions/AAPL")
    assert r.status_code == 201 and Decimal(r.json()["qty"]) == 4
    assert "AAPL" not in _positions("account_001")
    r = c.delete("/api/v1/positions/AAPL")
    assert r.status_code == 404 and r.json()["error"]["code"] == "position_not_found"
    closes = OrderRecord.objects.filter(side="sell", outcome="accepted")
    assert closes.count() == 3
    assert AuditEvent.objects.filter(action="order.submitted", object_id__in=[str(r.pk) for r in closes]).count() == 3


def test_close_position_is_allowed_while_reducing_and_refused_while_halted(live):
    c = trader()
    assert buy(c, qty="2").status_code == 201
    set_state("reducing", account_id="account_001", reason="close only")
    assert c.delete("/api/v1/positions/AAPL?qty=1").status_code == 201
    set_state("halted", reason="stop everything")
    r = c.delete("/api/v1/positions/AAPL")
    assert r.status_code == 422 and r.json()["error"]["code"] == "trading_halted"


def test_close_all_positions(live):
    c = trader()
    assert buy(c, qty="3").status_code == 201
    assert buy(c, symbol="MSFT", qty="2").status_code == 201
    r = c.delete("/api/v1/positions")
    assert r.status_code == 200, r.json()
    assert r.json()["summary"] == {"positions": 2, "closing": 2, "failed": 0}
    assert _positions("account_001") == {}


def test_flatten_several_accounts_one_broker_failing_then_a_retry_completes_it(live):
    for account_id in ("account_001", "account_002", "account_003"):
        c = trader(account_id)
        assert buy(c, qty="3").status_code == 201
        assert buy(c, type="limit", limit_price="1.00", time_in_force="gtc").status_code == 201
    # account_002's broker refuses its credentials
    live.upsert_account(KEYS["account_002"][0], secret_key="rotated-elsewhere")
    ids = ["account_001", "account_002", "account_003"]
    r = admin().post("/api/v1/admin/flatten", {"account_ids": ids, "reason": "desk flat"}, format="json")
    assert r.status_code == 200, r.json()
    body = r.json()
    by_id = {row["account_id"]: row for row in body["results"]}
    assert by_id["account_001"]["status"] == by_id["account_003"]["status"] == "completed", body
    assert by_id["account_002"]["status"] == "failed" and by_id["account_002"]["error"]["code"]
    assert body["summary"] == {"accounts": 3, "completed": 2, "incomplete": 0, "failed": 1}
    for account_id in ("account_001", "account_003"):
        assert _positions(account_id) == {} and _open_orders(account_id) == []
        assert trading_state_get(account=AlpacaAccount.objects.get(account_id=account_id)).state == "reducing"
    # every account was set to reducing first, even the failing one: nothing new opens there meanwhile
    assert trading_state_get(account=AlpacaAccount.objects.get(account_id="account_002")).state == "reducing"
    assert buy(trader("account_001")).json()["error"]["code"] == "reduce_only"

    live.upsert_account(KEYS["account_002"][0], secret_key=KEYS["account_002"][1])
    closes_before = OrderRecord.objects.filter(client_order_id__startswith="flat-", outcome="accepted").count()
    r = admin().post("/api/v1/admin/flatten", {"account_ids": ids, "reason": "desk flat", "flatten_id": body["flatten_id"]},
                     format="json")
    assert r.status_code == 200, r.json()
    assert r.json()["summary"] == {"accounts": 3, "completed": 3, "incomplete": 0, "failed": 0}
    assert _positions("account_002") == {} and _open_orders("account_002") == []
    # the retry sent only account_002's close; the others had nothing left
    assert OrderRecord.objects.filter(client_order_id__startswith="flat-", outcome="accepted").count() == closes_before + 1
    flattens = AuditEvent.objects.filter(action="risk.flatten").order_by("seq")
    assert [e.data["summary"]["failed"] for e in flattens] == [1, 0]
    assert all(e.data["flatten_id"] == body["flatten_id"] and e.data["reason"] == "desk flat" for e in flattens)


def test_flatten_is_admin_only(live):
    r = trader().post("/api/v1/admin/flatten", {"all": True, "reason": "x"}, format="json")
    assert r.status_code == 403
    r = admin().post("/api/v1/admin/flatten", {"reason": "x"}, format="json")
    assert r.status_code == 400


@requires_postgres  # the test SQLite database (in memory, shared cache) refuses concurrent writers instead of waiting
@pytest.mark.django_db(transaction=True)
def test_flatten_runs_accounts_concurrently_outside_a_transaction(live):
    """The pool path: each account on its own thread and connection (tests above run inside the test's transaction)."""
    for account_id in ("account_001", "account_002"):
        assert buy(trader(account_id), qty="2").status_code == 201
    r = admin().post("/api/v1/admin/flatten", {"account_ids": ["account_001", "account_002"], "reason": "eod"}, format="json")
    assert r.status_code == 200, r.json()
    assert r.json()["summary"] == {"accounts": 2, "completed": 2, "incomplete": 0, "failed": 0}
    assert _positions("account_001") == {} and _positions("account_002") == {}
    assert OrderRecord.objects.filter(client_order_id__startswith="flat-", outcome="accepted").count() == 2
