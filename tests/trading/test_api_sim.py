"""The trading API over real HTTP to a running alpacasim: APIClient -> DRF -> order service ->
accounts/broker.py (alpaca-py) -> alpacasim. Faults are injected through alpacasim's control API."""
from __future__ import annotations

import socket
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from django.utils import timezone

from accounts import broker as broker_seam
from accounts.detection import accounts_detect_types
from accounts.models import AlpacaAccount, BalanceSnapshot
from accounts.services import account_sync, account_update
from audit.models import AuditEvent
from opitios.config import current_config
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from trading.models import OrderRecord

from .conftest import client_for, token

pytestmark = pytest.mark.django_db

ORDER = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
EXAMPLE = Path(__file__).resolve().parents[2] / "secrets.example.yml"


@pytest.fixture
def live(sim, settings, config_file):  # noqa: F811
    """The demo accounts synced from the example file and detected against alpacasim."""
    settings.ALPACA_PAPER_URL, settings.ALPACA_LIVE_URL, settings.ALPACA_DATA_URL = sim.paper_url, sim.live_url, sim.data_url
    settings.BROKER_READ_TIMEOUT = 1.0
    config_file.data["accounts"] = yaml.safe_load(EXAMPLE.read_text())["accounts"]
    config_file.write()
    broker_seam.reset_pool()
    account_sync(config=current_config(), detect=True)
    assert AlpacaAccount.objects.get(account_id="account_004").account_type == "live"
    yield sim
    sim.clear_faults()
    broker_seam.reset_pool()


def trader(account_id="account_001"):
    return client_for(token(user_id=f"user-{account_id}", account_id=account_id))


def sim_orders(sim, api_key="PKDEMO0000000000001") -> list[dict]:  # noqa: F811
    acct = next(a for a in sim.state()["accounts"] if a["api_key"] == api_key)
    return acct["orders"]


def test_stock_order_reaches_the_broker_with_record_and_audit(live):
    r = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": "sim-1"}, format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["account"] == {"id": "account_001", "type": "paper"}
    assert body["status"] in ("new", "accepted", "filled", "pending_new")
    assert [o["client_order_id"] for o in sim_orders(live)] == ["sim-1"]
    rec = OrderRecord.objects.get()
    assert rec.broker_order_id == body["id"] and rec.broker_ms > 0 and rec.overhead_ms >= 0
    assert AuditEvent.objects.filter(action="order.submitted", object_id=str(rec.pk)).exists()


def test_option_order_and_market_data(live):
    c = trader()
    chain = c.get("/api/v1/options/AAPL/chain?type=call").json()
    assert chain["contracts"], chain
    symbol = chain["contracts"][0]["symbol"]
    r = c.post("/api/v1/options/order", {"option_symbol": symbol, "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"},
               format="json")
    assert r.status_code == 201, r.json()
    q = c.get("/api/v1/stocks/AAPL/quote").json()
    assert q["symbol"] == "AAPL" and q["bid"] and q["ask"]
    batch = c.post("/api/v1/stocks/quotes/batch", {"symbols": ["AAPL", "MSFT"]}, format="json").json()["results"]
    assert all("quote" in x for x in batch)
    bars = c.get("/api/v1/stocks/AAPL/bars?timeframe=1Day&limit=5").json()["bars"]
    assert 0 < len(bars) <= 5
    oq = c.post("/api/v1/options/quotes/batch", {"option_symbols": [symbol]}, format="json").json()["results"]
    assert "quote" in oq[0]


def test_account_positions_orders_cancel(live):
    c = trader()
    acct = c.get("/api/v1/account").json()
    assert acct["account_number"].startswith("PA") and acct["type"] == "paper"
    c.post("/api/v1/stocks/order", ORDER, format="json")
    positions = c.get("/api/v1/positions").json()["positions"]
    assert positions[0]["symbol"] == "AAPL"
    r = c.post("/api/v1/stocks/order", {**ORDER, "type": "limit", "limit_price": "1.00", "time_in_force": "gtc"}, format="json")
    order_id = r.json()["id"]
    assert r.json()["time_in_force"] == "gtc"
    assert any(o["id"] == order_id for o in c.get("/api/v1/orders?status=open").json()["orders"])
    assert c.get(f"/api/v1/orders/{order_id}").json()["status"] in ("new", "accepted")
    assert c.delete(f"/api/v1/orders/{order_id}").status_code == 200
    assert c.get(f"/api/v1/orders/{order_id}").json()["status"] in ("canceled", "pending_cancel")
    assert AuditEvent.objects.filter(action="order.cancelled").exists()
    r = c.delete(f"/api/v1/orders/{order_id}")
    assert r.status_code == 422 and r.json()["error"]["code"] == "broker_rejected"


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"status": 500}, 503, "broker_unavailable"),
        ({"status": 502}, 503, "broker_unavailable"),
        ({"status": 503}, 503, "broker_unavailable"),
        ({"status": 504}, 504, "broker_timeout"),
        ({"status": 429}, 429, "upstream_rate_limited"),
        ({"hang": True}, 504, "broker_timeout"),
    ],
)
def test_broker_faults_on_submit(live, fault, status, code):
    live.set_fault("orders", count=1, **fault)
    r = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": f"fault-{status}"}, format="json")
    assert r.status_code == status, r.json()
    assert r.json()["error"]["code"] == code
    if status == 429:
        assert int(r["Retry-After"]) >= 1
    rec = OrderRecord.objects.get()
    assert rec.outcome == "failed" and rec.http_status == status and rec.error_code == code
    live.clear_faults()
    # the same client_order_id can be retried safely: exactly one order at the broker
    r = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": f"fault-{status}"}, format="json")
    assert r.status_code == 201, r.json()
    assert len([o for o in sim_orders(live) if o["client_order_id"] == f"fault-{status}"]) == 1


def test_broker_rejection_is_a_422_with_a_rejected_record_and_its_audit_event(live):
    # cash is above the minimum, so our check passes; alpacasim refuses the cost (insufficient buying power)
    r = trader().post("/api/v1/stocks/order", {**ORDER, "qty": "10000000", "client_order_id": "rejected-1"}, format="json")
    assert r.status_code == 422 and r.json()["error"]["code"] == "broker_rejected", r.json()
    rec = OrderRecord.objects.get(client_order_id="rejected-1")
    assert (rec.outcome, rec.http_status, rec.error_code) == ("rejected", 422, "broker_rejected")
    event = AuditEvent.objects.get(action="order.rejected")
    assert event.object_id == str(rec.pk) and event.account.account_id == "account_001"


def test_broker_refusing_connections_gives_503_on_orders_reads_and_market_data(live, settings):
    """Nothing listens where Alpaca should be (connection refused): a clear 503, a failed OrderRecord, never a 500."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    settings.ALPACA_PAPER_URL, settings.ALPACA_DATA_URL = f"{closed}/paper", f"{closed}/data"
    broker_seam.reset_pool()
    c = trader()
    r = c.post("/api/v1/stocks/order", {**ORDER, "client_order_id": "refused-1"}, format="json")
    assert r.status_code == 503 and r.json()["error"]["code"] == "broker_unavailable", r.json()
    rec = OrderRecord.objects.get(client_order_id="refused-1")
    assert (rec.outcome, rec.http_status, rec.error_code) == ("failed", 503, "broker_unavailable")
    for path in ("/api/v1/account", "/api/v1/positions", "/api/v1/orders", "/api/v1/stocks/AAPL/quote"):
        r = c.get(path)
        assert r.status_code == 503 and r.json()["error"]["code"] == "broker_unavailable", (path, r.json())


def test_idempotency_after_timeout_gives_one_order(live):
    """The broker answers after our read timeout; the retry with the same client_order_id asks the
    broker first and never creates a second order. (alpacasim drops a request whose client went
    away, so "created but the answer lost" is covered with the seam faked in test_order_flow.)
    The retry is not timed against the dropped request: before or after alpacasim drops it, one order."""
    live.set_latency(1500, route="orders")
    r = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": "lost-1"}, format="json")
    assert r.status_code == 504 and r.json()["error"]["code"] == "broker_timeout"
    live.set_latency(0, route="orders")
    r2 = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": "lost-1"}, format="json")
    assert r2.status_code == 201, r2.json()
    assert list(OrderRecord.objects.order_by("attempt").values_list("outcome", flat=True)) == ["failed", "accepted"]
    r3 = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": "lost-1"}, format="json")
    assert r3.json()["replayed"] is True and r3.json()["id"] == r2.json()["id"]
    assert len([o for o in sim_orders(live) if o["client_order_id"] == "lost-1"]) == 1


def test_insufficient_balance_on_account_003(live):
    r = trader("account_003").post("/api/v1/stocks/order", ORDER, format="json")
    assert r.status_code == 422
    assert r.json()["error"]["message"] == "Account account_003 cash $4,200.00 is below the minimum balance $5,000.00"
    assert sim_orders(live, "PKDEMO0000000000003") == []
    assert AuditEvent.objects.filter(action="balance.insufficient").exists()
    assert AuditEvent.objects.filter(action="order.refused").exists()


def test_stale_snapshot_causes_live_fetch(live):
    acct = AlpacaAccount.objects.get(account_id="account_001")
    BalanceSnapshot.objects.filter(account=acct).delete()
    BalanceSnapshot.objects.create(account=acct, cash=Decimal("1"), buying_power=0, equity=0,
                                   fetched_at=timezone.now() - timedelta(seconds=3600))
    r = trader().post("/api/v1/stocks/order", ORDER, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["checks"]["balance"]["source"] == "live" and r.json()["checks"]["balance"]["cash"] == "100000.00"
    r = trader().post("/api/v1/stocks/order", ORDER, format="json")
    assert r.json()["checks"]["balance"]["source"] == "snapshot"


def test_failed_balance_fetch_fail_open_and_fail_closed(live, config_file):
    BalanceSnapshot.objects.all().delete()
    live.set_fault("account", status=503)
    r = trader().post("/api/v1/stocks/order", ORDER, format="json")
    assert r.status_code == 201 and r.json()["checks"]["balance"]["status"] == "unverified"
    assert AuditEvent.objects.filter(action="balance.unverified").exists()
    config_file.set("trading", balance_check_fail_closed=True)
    r = trader().post("/api/v1/stocks/order", ORDER, format="json")
    assert r.status_code == 503 and r.json()["error"]["code"] == "balance_unverified"


def test_fail_closed_never_traps_a_position(live, config_file):
    assert trader().post("/api/v1/stocks/order", {**ORDER, "qty": "2"}, format="json").status_code == 201
    BalanceSnapshot.objects.all().delete()
    live.set_fault("account", status=503)
    config_file.set("trading", balance_check_fail_closed=True)
    r = trader().post("/api/v1/stocks/order", {**ORDER, "side": "sell", "qty": "3"}, format="json")
    assert r.status_code == 503 and r.json()["error"]["code"] == "balance_unverified"  # more than held: opens a short
    r = trader().post("/api/v1/stocks/order", {**ORDER, "side": "sell", "qty": "2"}, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["checks"]["balance"]["status"] == "unverified"


def test_threshold_change_applies_without_restart(live, config_file):
    assert trader().post("/api/v1/stocks/order", ORDER, format="json").status_code == 201
    config_file.set("trading", minimum_balance=1_000_000)
    r = trader().post("/api/v1/stocks/order", ORDER, format="json")
    assert r.status_code == 422 and "minimum balance $1,000,000.00" in r.json()["error"]["message"]


def test_reducing_sell_on_low_cash_account(live):
    acct = AlpacaAccount.objects.get(account_id="account_003")
    acct.balance_check_enabled = False
    acct.save()
    assert trader("account_003").post("/api/v1/stocks/order", {**ORDER, "qty": "2"}, format="json").status_code == 201
    acct.balance_check_enabled = None
    acct.save()
    BalanceSnapshot.objects.all().delete()
    r = trader("account_003").post("/api/v1/stocks/order", {**ORDER, "side": "sell", "qty": "2"}, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["checks"]["balance"]["status"] == "reducing_sell"


def test_bulk_on_every_enabled_account(live):
    admin = client_for(token(user_id="ops", permissions=("bulk_trading",), account_id=None))
    r = admin.post("/api/v1/orders/bulk", {"stock": {**ORDER, "client_order_id": "bulk-sim"}}, format="json")
    assert r.status_code == 200
    codes = {x["account_id"]: x["status_code"] for x in r.json()["results"]}
    assert codes == {"account_001": 201, "account_002": 201, "account_003": 422, "account_004": 201}


# --- the account's paper/live type must be known before it trades -------------------------------


def test_undetected_account_is_refused_until_detected(sim, settings, config_file):  # noqa: F811
    settings.ALPACA_PAPER_URL, settings.ALPACA_LIVE_URL, settings.ALPACA_DATA_URL = sim.paper_url, sim.live_url, sim.data_url
    config_file.data["accounts"] = yaml.safe_load(EXAMPLE.read_text())["accounts"]
    config_file.write()
    broker_seam.reset_pool()
    account_sync(config=current_config(), detect=False)  # what `make run` does before the worker detects
    r = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": "undetected-1"}, format="json")
    assert r.status_code == 422, r.json()
    assert r.json()["error"]["code"] == "account_type_undetected"
    assert "has not been detected yet" in r.json()["error"]["message"]
    assert sim_orders(sim) == []
    rec = OrderRecord.objects.get()
    assert rec.outcome == "refused" and rec.error_code == "account_type_undetected"
    assert AuditEvent.objects.filter(action="order.refused", object_id=str(rec.pk)).exists()
    accounts_detect_types(accounts=AlpacaAccount.objects.filter(enabled=True))
    r = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": "undetected-2"}, format="json")
    assert r.status_code == 201, r.json()
    broker_seam.reset_pool()


def test_enabling_an_account_or_replacing_its_keys_detects_it(live):
    acct = AlpacaAccount.objects.get(account_id="account_004")
    AlpacaAccount.objects.filter(pk=acct.pk).update(enabled=False, type_source="unknown", account_type="paper")
    acct.refresh_from_db()
    account_update(account=acct, changes={"enabled": True}, actor_id="ops")
    acct.refresh_from_db()
    assert (acct.type_source, acct.account_type) == ("detected", "live")
    r = trader("account_004").post("/api/v1/stocks/order", ORDER, format="json")
    assert r.status_code == 201 and r.json()["account"]["type"] == "live", r.json()
    # New keys belong to another account: the old detection no longer says anything about them.
    live.set_fault("account", status=500)
    account_update(account=acct, changes={}, api_key="AKDEMO0000000000004X", secret_key="other-secret", actor_id="ops")
    live.clear_faults()
    acct.refresh_from_db()
    assert acct.type_source == "fallback"  # detection ran after the key change and failed
    r = trader("account_004").post("/api/v1/stocks/order", ORDER, format="json")
    assert r.status_code == 422 and r.json()["error"]["code"] == "account_type_unverified", r.json()


def test_live_account_in_safe_mode_is_refused_paper_one_trades(live):
    """Safe mode labels a failed detection paper. A live-configured account's orders would
    still go to the live endpoint labelled paper, so it is refused; a paper-configured one trades."""
    live.set_fault("account", status=500)
    accounts_detect_types(accounts=AlpacaAccount.objects.filter(account_id__in=["account_001", "account_004"]))
    live.clear_faults()
    a4 = AlpacaAccount.objects.get(account_id="account_004")
    assert (a4.account_type, a4.type_source) == ("paper", "fallback") and not a4.tradable
    r = trader("account_004").post("/api/v1/stocks/order", ORDER, format="json")
    assert r.status_code == 422 and r.json()["error"]["code"] == "account_type_unverified", r.json()
    assert sim_orders(live, "AKDEMO0000000000004") == []
    assert OrderRecord.objects.get(account=a4).outcome == "refused"
    r = trader().post("/api/v1/stocks/order", ORDER, format="json")
    assert r.status_code == 201 and r.json()["account"]["type"] == "paper", r.json()


def test_reused_client_order_id_for_another_order_is_409_with_no_broker_call(live):
    assert trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": "same-id"}, format="json").status_code == 201
    r = trader().post("/api/v1/stocks/order", {**ORDER, "qty": "10", "side": "sell", "client_order_id": "same-id"}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_conflict", r.json()
    assert [(o["client_order_id"], o["qty"]) for o in sim_orders(live)] == [("same-id", "1")]
    assert OrderRecord.objects.count() == 1


def test_unusable_credentials_leave_a_failed_record_and_a_502(live, caplog):
    AlpacaAccount.objects.filter(account_id="account_001").update(api_key_encrypted="gAAAAAB-not-a-token")
    r = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": "cred-1"}, format="json")
    assert r.status_code == 502 and r.json()["error"]["code"] == "broker_error", r.json()
    rec = OrderRecord.objects.get()
    assert (rec.outcome, rec.http_status, rec.error_code) == ("failed", 502, "broker_error") and rec.completed_at
    assert AuditEvent.objects.filter(action="order.failed", object_id=str(rec.pk)).exists()
    assert any("status=failed" in m and "cred-1" in m for m in caplog.messages)
    assert sim_orders(live) == []


def test_broker_duplicate_client_order_id_is_recovered_as_the_live_order(live):
    from accounts.broker import OrderRequest

    acct = AlpacaAccount.objects.get(account_id="account_001")
    placed = broker_seam.broker_for(acct).submit_order(OrderRequest(
        symbol="AAPL", side="buy", type="market", time_in_force="day", client_order_id="elsewhere-1", qty=Decimal(1)))
    r = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": "elsewhere-1"}, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["recovered"] is True and r.json()["id"] == placed.id
    assert OrderRecord.objects.get().outcome == "accepted"
    assert len(sim_orders(live)) == 1


def test_cancel_is_audited_with_its_record_failures_too_and_allowed_on_a_mismatched_account(live, caplog):
    c = trader()
    r = c.post("/api/v1/stocks/order", {**ORDER, "type": "limit", "limit_price": "1.00", "time_in_force": "gtc",
                                        "client_order_id": "to-cancel"}, format="json")
    order_id = r.json()["id"]
    rec = OrderRecord.objects.get(client_order_id="to-cancel")
    # A mismatch blocks new orders, not cancels: cancelling only reduces risk.
    AlpacaAccount.objects.filter(account_id="account_001").update(type_mismatch=True)
    assert c.delete(f"/api/v1/orders/{order_id}").status_code == 200
    assert any("allowed, cancelling reduces risk" in m for m in caplog.messages)
    event = AuditEvent.objects.get(action="order.cancelled")
    assert (event.object_id, event.data["client_order_id"], event.data["order_id"]) == (str(rec.pk), "to-cancel", order_id)
    rec.refresh_from_db()
    assert rec.broker_status == "pending_cancel"
    r = c.delete(f"/api/v1/orders/{order_id}")  # already canceled: the broker refuses
    assert r.status_code == 422
    failed = AuditEvent.objects.get(action="order.cancel_failed")
    assert failed.object_id == str(rec.pk) and failed.data["error"]["code"] == "broker_rejected"


def test_bulk_without_client_order_id_returns_one_id_to_retry_with(live):
    admin = client_for(token(user_id="ops", permissions=("bulk_trading",), account_id=None))
    body = {"stock": ORDER, "account_ids": ["account_001", "account_002"]}
    first = admin.post("/api/v1/orders/bulk", body, format="json").json()
    bulk_id = first["client_order_id"]
    assert bulk_id.startswith("bulk-")
    assert {x["order"]["client_order_id"] for x in first["results"]} == {bulk_id}
    retry = admin.post("/api/v1/orders/bulk", {**body, "stock": {**ORDER, "client_order_id": bulk_id}}, format="json").json()
    assert [x["order"]["replayed"] for x in retry["results"]] == [True, True]
    assert len(sim_orders(live)) == 1 and len(sim_orders(live, "PKDEMO0000000000002")) == 1
