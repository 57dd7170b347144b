"""Trading states against alpacasim: every state and each kind of order allowed or refused in it."""
from __future__ import annotations

import pytest

from audit.models import AuditEvent
from trading.models import OrderRecord

from .conftest import admin, buy, sell, set_state, trader

pytestmark = pytest.mark.django_db


def _option_symbol(client) -> str:
    chain = client.get("/api/v1/options/AAPL/chain?type=call").json()
    return chain["contracts"][0]["symbol"]


def _place_kind(kind: str, option_symbol: str):
    c = trader()
    if kind == "stock_buy":
        return buy(c)
    if kind == "stock_sell_reducing":  # the account holds 3 AAPL
        return sell(c, qty="1")
    if kind == "stock_sell_beyond_position":  # would open a short
        return sell(c, qty="5")
    if kind == "stock_limit_buy":
        return buy(c, type="limit", limit_price="1.00", time_in_force="gtc")
    if kind == "quick_sell_reducing":
        return c.post("/api/v1/stocks/AAPL/sell?qty=1")
    if kind == "option_buy":
        return c.post("/api/v1/options/order", {"option_symbol": option_symbol, "qty": "1", "side": "buy", "type": "market",
                                                "time_in_force": "day"}, format="json")
    raise AssertionError(kind)


ALLOWED = {
    "active": {"stock_buy", "stock_sell_reducing", "stock_sell_beyond_position", "stock_limit_buy", "quick_sell_reducing", "option_buy"},
    "reducing": {"stock_sell_reducing", "quick_sell_reducing"},
    "halted": set(),
}
# Sells first: alpacasim (like Alpaca) rejects a sell while a buy of the symbol rests ("wash trade").
KINDS = ["stock_sell_reducing", "quick_sell_reducing", "stock_sell_beyond_position", "option_buy", "stock_buy", "stock_limit_buy"]


@pytest.mark.parametrize("scope", ["global", "account"])
@pytest.mark.parametrize("state", ["active", "reducing", "halted"])
def test_each_state_allows_or_refuses_each_kind_of_order(live, state, scope):
    c = trader()
    assert buy(c, qty="3").status_code == 201  # a long position to reduce
    resting = buy(c, type="limit", limit_price="1.00", time_in_force="gtc").json()
    option_symbol = _option_symbol(c)
    set_state(state, account_id="account_001" if scope == "account" else None, reason=f"drill {state}")
    # cancels are always allowed
    r = c.delete(f"/api/v1/orders/{resting['id']}")
    assert r.status_code == 200, r.json()
    expected_code = {"reducing": "reduce_only", "halted": "trading_halted"}.get(state)
    for kind in KINDS:
        r = _place_kind(kind, option_symbol)
        if kind == "stock_sell_beyond_position" and state == "active":
            # not ours to refuse: it reaches alpacasim, which (like Alpaca here) refuses to open the short
            assert r.json()["error"]["code"] == "broker_rejected", r.json()
            assert OrderRecord.objects.get(client_order_id=r.json()["error"]["details"]["client_order_id"]).submitted_at
        elif kind in ALLOWED[state]:
            assert r.status_code == 201, (kind, r.json())
        else:
            assert r.status_code == 422, (kind, r.json())
            error = r.json()["error"]
            assert error["code"] == expected_code and f"drill {state}" in error["message"], (kind, error)
            assert error["details"]["trading_state"]["scope"] == ("global" if scope == "global" else "account:account_001")
            record = OrderRecord.objects.get(client_order_id=error["details"]["client_order_id"])
            assert record.outcome == "refused" and record.error_code == expected_code
            assert AuditEvent.objects.filter(action="order.refused", object_id=str(record.pk)).exists()


def test_the_stricter_of_global_and_account_applies_and_changes_are_audited(live):
    set_state("reducing", reason="global drill")
    set_state("halted", account_id="account_002", reason="account 2 broken")
    assert buy(trader("account_002")).json()["error"]["code"] == "trading_halted"
    assert buy(trader("account_001")).json()["error"]["code"] == "reduce_only"
    set_state("active", reason="drill over")
    assert buy(trader("account_001")).status_code == 201
    assert buy(trader("account_002")).json()["error"]["code"] == "trading_halted"
    events = list(AuditEvent.objects.filter(action="risk.state_changed").order_by("seq"))
    assert [(e.data["scope"], e.data["old_state"], e.data["new_state"], e.data["reason"]) for e in events] == [
        ("global", "active", "reducing", "global drill"),
        ("account:account_002", "active", "halted", "account 2 broken"),
        ("global", "reducing", "active", "drill over"),
    ]
    assert all(e.actor_type == "admin" and e.actor_id == "risk-admin" for e in events)
    listed = admin().get("/api/v1/admin/trading-state").json()["states"]
    assert listed[0]["scope"] == "global" and listed[0]["state"] == "active"
    assert {"scope": "account:account_002", "state": "halted"}.items() <= listed[1].items()


def test_trading_state_api_is_admin_only_and_needs_a_reason(live):
    r = trader().post("/api/v1/admin/trading-state", {"scope": "global", "state": "halted", "reason": "x"}, format="json")
    assert r.status_code == 403
    r = admin().post("/api/v1/admin/trading-state", {"scope": "global", "state": "halted", "reason": ""}, format="json")
    assert r.status_code == 400
    r = admin().post("/api/v1/admin/trading-state", {"scope": "account", "account_id": "nope", "state": "halted", "reason": "x"},
                     format="json")
    assert r.status_code == 404 and r.json()["error"]["code"] == "account_not_found"
    assert not AuditEvent.objects.filter(action="risk.state_changed").exists()
