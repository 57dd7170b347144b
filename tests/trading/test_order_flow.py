"""The order flow over HTTP (APIClient) with the broker seam faked: validation, idempotency, checks,
fault mapping and the OrderRecord of every attempt."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.broker import BrokerRejected, BrokerTimeout, BrokerUnavailable, OrderRequest, UpstreamRateLimited
from accounts.models import BalanceSnapshot
from trading.models import OrderRecord

from .fakes import FakeBroker

pytestmark = pytest.mark.django_db

ORDER = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
OPTION = {"option_symbol": "AAPL260116C00190000", "qty": "1", "side": "buy", "type": "limit", "limit_price": "1.5",
          "time_in_force": "day"}


def post(client, body, path="/api/v1/stocks/order"):
    return client.post(path, body, format="json")


def test_stock_order_accepted_with_account_checks_and_timing(trader, world):
    r = post(trader, {**ORDER, "client_order_id": "c-1"})
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["client_order_id"] == "c-1" and body["status"] == "accepted" and body["replayed"] is False
    assert body["account"] == {"id": "account_001", "type": "paper"}
    assert body["checks"]["balance"]["status"] == "passed"
    assert body["checks"]["balance"]["source"] == "live"
    assert body["checks"]["balance"]["minimum_balance"] == "5000.00"
    t = body["timing"]
    assert t["total_ms"] >= t["broker_ms"] >= 0 and t["overhead_ms"] == pytest.approx(t["total_ms"] - t["broker_ms"], abs=0.01)
    rec = OrderRecord.objects.get()
    assert rec.outcome == "accepted" and rec.broker_order_id == body["id"] and rec.account_type == "paper" and rec.source == "api"
    assert rec.received_at <= rec.submitted_at <= rec.responded_at <= rec.completed_at
    assert rec.user_id == "u1"


def test_generated_client_order_id_is_sent(trader, world):
    r = post(trader, ORDER)
    assert r.status_code == 201
    cid = r.json()["client_order_id"]
    assert cid.startswith("opt-") and cid in world.state("account_001").orders


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**ORDER, "symbol": "not a symbol"}, "symbol"),
        ({**ORDER, "qty": None}, "qty"),
        ({**ORDER, "notional": "100"}, "qty"),
        ({**ORDER, "qty": "0"}, "qty"),
        ({**ORDER, "type": "limit"}, "limit_price"),
        ({**ORDER, "type": "stop_limit", "limit_price": "10"}, "stop_price"),
        ({**ORDER, "type": "stop"}, "stop_price"),
        ({**ORDER, "type": "market", "limit_price": "10"}, "limit_price"),
        ({**ORDER, "time_in_force": "week"}, "time_in_force"),
        ({**ORDER, "side": "hold"}, "side"),
        ({**ORDER, "client_order_id": "x" * 49}, "client_order_id"),
        ({**ORDER, "client_order_id": "sb-42-1"}, "client_order_id"),  # the sell bot's ids are reserved
        ({**ORDER, "client_order_id": "OPT-mine"}, "client_order_id"),
    ],
)
def test_stock_order_validation(trader, world, body, field):
    r = post(trader, body)
    assert r.status_code == 400, r.json()
    assert r.json()["error"]["code"] == "invalid_request"
    assert field in r.json()["error"]["details"]["fields"]
    assert world.submits() == [] and OrderRecord.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**OPTION, "option_symbol": "AAPL260116X00190000"}, "option_symbol"),
        ({**OPTION, "option_symbol": "AAPL261316C00190000"}, "option_symbol"),
        ({**OPTION, "qty": "1.5"}, "qty"),
        ({**OPTION, "time_in_force": "gtc"}, "time_in_force"),
        ({**OPTION, "limit_price": None}, "limit_price"),
    ],
)
def test_option_order_validation(trader, world, body, field):
    r = post(trader, body, "/api/v1/options/order")
    assert r.status_code == 400, r.json()
    assert field in r.json()["error"]["details"]["fields"]


def test_option_order_day_only_message(trader, world):
    r = post(trader, {**OPTION, "time_in_force": "gtc"}, "/api/v1/options/order")
    assert r.json()["error"]["details"]["fields"]["time_in_force"] == ["Option orders accept time_in_force day only."]


def test_option_order_accepted(trader, world):
    r = post(trader, {**OPTION, "auto_sell_enabled": True}, "/api/v1/options/order")
    assert r.status_code == 201, r.json()
    rec = OrderRecord.objects.get()
    assert rec.asset_class == "us_option" and rec.auto_sell_enabled is True


def test_time_in_force_and_type_sent_as_given(trader, world):
    r = post(trader, {**ORDER, "type": "limit", "limit_price": "10", "time_in_force": "gtc"})
    assert r.status_code == 201
    sent = world.state("account_001").orders[r.json()["client_order_id"]]
    assert (sent.type, sent.time_in_force) == ("limit", "gtc")


def test_max_order_qty_and_notional(trader, world, config_file):
    config_file.set("trading", max_order_qty=10, max_order_notional=500)
    r = post(trader, {**ORDER, "qty": "11"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "order_limit_exceeded"
    r = post(trader, {**ORDER, "qty": "6"})  # 6 x ask 100.5 > 500
    assert r.status_code == 400 and r.json()["error"]["code"] == "order_limit_exceeded"
    r = post(trader, {"symbol": "AAPL", "notional": "501", "side": "buy", "type": "market", "time_in_force": "day"})
    assert r.status_code == 400
    assert OrderRecord.objects.filter(outcome="refused").count() == 3
    assert post(trader, {**ORDER, "qty": "4"}).status_code == 201


def test_replay_same_client_order_id(trader, world):
    first = post(trader, {**ORDER, "client_order_id": "dup-1"})
    second = post(trader, {**ORDER, "client_order_id": "dup-1"})
    assert first.status_code == 201 and second.status_code == 201
    assert second.json()["replayed"] is True and second.json()["id"] == first.json()["id"]
    assert len(world.submits()) == 1 and OrderRecord.objects.count() == 1


def test_reused_client_order_id_with_another_order_is_a_conflict(trader, world):
    first = post(trader, {**ORDER, "client_order_id": "dup-2"})
    assert first.status_code == 201
    assert post(trader, {**ORDER, "qty": "1.000", "client_order_id": "dup-2"}).json()["replayed"] is True  # the same quantity
    for changed in ({"qty": "5"}, {"side": "sell"}, {"symbol": "MSFT"}, {"type": "limit", "limit_price": "10"},
                    {"time_in_force": "gtc"}, {"qty": None, "notional": "100"}):
        r = post(trader, {**ORDER, **changed, "client_order_id": "dup-2"})
        assert r.status_code == 409, (changed, r.json())
        err = r.json()["error"]
        assert err["code"] == "idempotency_conflict" and err["details"]["existing"]["broker_order_id"] == first.json()["id"]
    assert len(world.submits()) == 1 and OrderRecord.objects.count() == 1


def test_retry_with_another_order_after_a_failure_is_a_conflict(trader, world):
    world.faults["submit_order"] = (BrokerTimeout("read timeout", upstream_status=504),)  # reached upstream, answer lost
    assert post(trader, {**ORDER, "client_order_id": "t-9"}).status_code == 504
    r = post(trader, {**ORDER, "qty": "7", "client_order_id": "t-9"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_conflict"
    assert world.calls[-1][1] != "get_order_by_client_id" and len(world.submits()) == 1


def test_retry_never_recovers_a_different_broker_order(trader, world):
    world.faults["submit_order"] = BrokerUnavailable("upstream 503", upstream_status=503)
    assert post(trader, {**ORDER, "client_order_id": "t-10"}).status_code == 503
    # Meanwhile another client of the same Alpaca account used the id for another order.
    FakeBroker("account_001", world.state("account_001"), world)._store(
        OrderRequest(symbol="TSLA", side="sell", type="market", time_in_force="day", client_order_id="t-10", qty=Decimal(3)))
    r = post(trader, {**ORDER, "client_order_id": "t-10"})
    assert r.status_code == 409, r.json()
    assert r.json()["error"]["code"] == "idempotency_conflict" and "recovered" not in r.json()
    rec = OrderRecord.objects.get(is_current=True)
    assert (rec.outcome, rec.error_code, rec.broker_order_id) == ("refused", "idempotency_conflict", "")
    assert post(trader, {**ORDER, "client_order_id": "t-10"}).json()["error"]["details"]["replayed"] is True


def test_retry_after_timeout_finds_the_order_instead_of_resubmitting(trader, world):
    world.faults["submit_order"] = (BrokerTimeout("read timeout", upstream_status=504),)  # reached upstream, answer lost
    r = post(trader, {**ORDER, "client_order_id": "t-1"})
    assert r.status_code == 504 and r.json()["error"]["code"] == "broker_timeout"
    r2 = post(trader, {**ORDER, "client_order_id": "t-1"})
    assert r2.status_code == 201 and r2.json()["recovered"] is True
    assert len(world.submits()) == 1 and len(world.state("account_001").orders) == 1
    assert list(OrderRecord.objects.order_by("attempt").values_list("outcome", "is_current")) == [("failed", False), ("accepted", True)]


def test_retry_after_unavailable_resubmits_when_broker_has_no_order(trader, world):
    world.faults["submit_order"] = BrokerUnavailable("upstream 503", upstream_status=503)
    assert post(trader, {**ORDER, "client_order_id": "u-1"}).status_code == 503
    r = post(trader, {**ORDER, "client_order_id": "u-1"})
    assert r.status_code == 201 and "recovered" not in r.json()
    assert len(world.state("account_001").orders) == 1


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (BrokerUnavailable("upstream 500", upstream_status=500), 503, "broker_unavailable"),
        (BrokerTimeout("upstream 504", upstream_status=504), 504, "broker_timeout"),
        (UpstreamRateLimited("too many", upstream_status=429, retry_after=7), 429, "upstream_rate_limited"),
        (BrokerRejected("insufficient buying power", upstream_status=403, upstream_code=40310000), 422, "broker_rejected"),
    ],
)
def test_broker_faults_map_and_leave_a_record(trader, world, exc, status, code):
    world.faults["submit_order"] = exc
    r = post(trader, ORDER)
    assert r.status_code == status and r.json()["error"]["code"] == code
    if status == 429:
        assert r["Retry-After"] == "7"
    rec = OrderRecord.objects.get()
    assert rec.error_code == code and rec.http_status == status and rec.outcome in ("failed", "rejected")
    assert rec.submitted_at and rec.responded_at and rec.total_ms is not None


def test_insufficient_balance_exact_message(trader, world, demo_accounts):
    world.state("account_001").cash = Decimal("4200")
    r = post(trader, ORDER)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "insufficient_balance"
    assert err["message"] == "Account account_001 cash $4,200.00 is below the minimum balance $5,000.00"
    assert err["details"]["checks"]["balance"]["status"] == "insufficient"
    assert world.submits() == []
    rec = OrderRecord.objects.get()
    assert rec.outcome == "refused" and rec.balance_status == "insufficient"


def test_fresh_snapshot_is_used_and_stale_one_causes_live_fetch(trader, world, demo_accounts):
    acct = demo_accounts["account_001"]
    BalanceSnapshot.objects.create(account=acct, cash=Decimal("9000"), buying_power=0, equity=0, fetched_at=timezone.now())
    r = post(trader, ORDER)
    assert r.json()["checks"]["balance"]["source"] == "snapshot"
    assert ("account_001", "get_account") not in world.calls
    BalanceSnapshot.objects.update(fetched_at=timezone.now() - timedelta(seconds=120))
    r = post(trader, ORDER)
    assert r.json()["checks"]["balance"]["source"] == "live"
    assert ("account_001", "get_account") in world.calls
    assert BalanceSnapshot.objects.filter(account=acct).count() == 2


def test_failed_fetch_falls_back_then_fail_open_then_fail_closed(trader, world, demo_accounts, config_file):
    acct = demo_accounts["account_001"]
    BalanceSnapshot.objects.create(account=acct, cash=Decimal("9000"), buying_power=0, equity=0,
                                   fetched_at=timezone.now() - timedelta(seconds=120))
    world.faults["get_account"] = BrokerTimeout("timeout")
    r = post(trader, ORDER)
    assert r.status_code == 201 and r.json()["checks"]["balance"]["fallback"] is True
    BalanceSnapshot.objects.update(fetched_at=timezone.now() - timedelta(seconds=1000))
    world.faults["get_account"] = BrokerTimeout("timeout")
    r = post(trader, ORDER)
    assert r.status_code == 201 and r.json()["checks"]["balance"]["status"] == "unverified"
    config_file.set("trading", balance_check_fail_closed=True)
    world.faults["get_account"] = BrokerTimeout("timeout")
    r = post(trader, ORDER)
    assert r.status_code == 503 and r.json()["error"]["code"] == "balance_unverified"
    assert OrderRecord.objects.filter(balance_status="unverified").count() == 2


def test_threshold_change_applies_without_restart(trader, world, demo_accounts, config_file):
    world.state("account_001").cash = Decimal("6000")
    assert post(trader, ORDER).status_code == 201
    config_file.set("trading", minimum_balance=7000)
    assert post(trader, ORDER).status_code == 422
    acct = demo_accounts["account_001"]
    acct.minimum_balance = Decimal("1000")  # an admin edit of the account override
    acct.save()
    assert post(trader, ORDER).status_code == 201
    acct.balance_check_enabled = False
    acct.minimum_balance = Decimal("100000")
    acct.save()
    r = post(trader, ORDER)
    assert r.status_code == 201 and r.json()["checks"]["balance"]["status"] == "disabled"


def test_reducing_sell_allowed_unless_blocked(trader, world, config_file):
    world.state("account_001").cash = Decimal("100")
    world.long("account_001", "AAPL", 5)
    r = post(trader, {**ORDER, "side": "sell", "qty": "5"})
    assert r.status_code == 201 and r.json()["checks"]["balance"]["status"] == "reducing_sell"
    assert post(trader, {**ORDER, "side": "sell", "qty": "6"}).status_code == 422  # more than held: not reducing
    config_file.set("trading", block_reducing_sells=True)
    assert post(trader, {**ORDER, "side": "sell", "qty": "5"}).status_code == 422


def test_mismatched_and_disabled_accounts_refused_and_recorded(admin, world, demo_accounts):
    a2 = demo_accounts["account_002"]
    a2.type_mismatch = True
    a2.save()
    r = post(admin, {**ORDER, "account_id": "account_002"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "account_type_mismatch"
    a3 = demo_accounts["account_003"]
    a3.enabled = False
    a3.save()
    r = post(admin, {**ORDER, "account_id": "account_003"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "account_disabled"
    assert world.submits() == []
    assert OrderRecord.objects.filter(outcome="refused").count() == 2


def test_quick_buy_and_sell(trader, world):
    r = trader.post("/api/v1/stocks/aapl/buy?qty=2")
    assert r.status_code == 201 and r.json()["symbol"] == "AAPL" and r.json()["type"] == "market"
    world.long("account_001", "AAPL", 2)
    r = trader.post("/api/v1/stocks/AAPL/sell?qty=2")
    assert r.status_code == 201 and r.json()["side"] == "sell"
    assert trader.post("/api/v1/stocks/AAPL/buy").status_code == 400


def test_bulk_places_on_every_enabled_account(admin, world, demo_accounts):
    world.state("account_003").cash = Decimal("4200")
    r = admin.post("/api/v1/orders/bulk", {"stock": {**ORDER, "client_order_id": "bulk-1"}}, format="json")
    assert r.status_code == 200, r.json()
    by = {x["account_id"]: x for x in r.json()["results"]}
    assert set(by) == {"account_001", "account_002", "account_003", "account_004"}
    assert by["account_003"]["status_code"] == 422 and by["account_003"]["error"]["code"] == "insufficient_balance"
    assert by["account_001"]["status_code"] == 201
    assert r.json()["summary"]["accepted"] == 3
    assert set(OrderRecord.objects.values_list("source", flat=True)) == {"bulk"}
    r = admin.post("/api/v1/orders/bulk", {"stock": ORDER, "account_ids": ["account_001", "nope"]}, format="json")
    assert r.status_code == 404


def test_orders_list_detail_and_cancel(trader, world):
    r = post(trader, ORDER)
    order_id = r.json()["id"]
    assert trader.get("/api/v1/orders?status=all").json()["orders"][0]["id"] == order_id
    assert trader.get(f"/api/v1/orders/{order_id}").json()["id"] == order_id
    assert trader.get("/api/v1/orders/not-a-uuid").status_code == 400
    assert trader.get("/api/v1/orders/00000000-0000-0000-0000-000000000000").status_code == 404
    r = trader.delete(f"/api/v1/orders/{order_id}")
    assert r.status_code == 200 and r.json()["status"] == "pending_cancel"


def test_positions_option_pl_uses_multiplier(trader, world):
    world.long("account_001", "AAPL260116C00190000", 2, price="1.50", asset_class="us_option")
    from dataclasses import replace

    st = world.state("account_001")
    st.positions["AAPL260116C00190000"] = replace(st.positions["AAPL260116C00190000"], current_price=Decimal("2.00"))
    pos = trader.get("/api/v1/positions").json()["positions"][0]
    assert pos["multiplier"] == 100 and pos["unrealized_pl"] == "100.00" and pos["market_value"] == "400.00"


def test_account_endpoint(trader, world):
    r = trader.get("/api/v1/account")
    assert r.status_code == 200 and r.json()["type"] == "paper" and r.json()["cash"] == "100000"


def test_market_data_endpoints(config_file, demo_accounts, world, client):
    assert client.get("/api/v1/stocks/AAPL/quote").json()["ask"] == "100.5"
    assert client.get("/api/v1/stocks/NOPE/quote").status_code == 404
    assert client.get("/api/v1/stocks/!!/quote").status_code == 400
    r = client.post("/api/v1/stocks/quotes/batch", {"symbols": ["AAPL", "NOPE", "b@d"]}, content_type="application/json")
    res = r.json()["results"]
    assert [x["symbol"] for x in res] == ["AAPL", "NOPE", "B@D"] and "quote" in res[0] and res[1]["error"]["code"] == "not_found"
    r = client.post("/api/v1/stocks/quotes/batch", {"symbols": [f"S{i}" for i in range(21)]}, content_type="application/json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_symbols"
    assert client.get("/api/v1/stocks/AAPL/bars?timeframe=2Min").status_code == 400
    assert client.get("/api/v1/stocks/AAPL/bars?limit=1001").status_code == 400
    assert client.get("/api/v1/stocks/AAPL/bars?timeframe=1Min&limit=5").status_code == 200
    chain = client.get("/api/v1/options/AAPL/chain?type=call").json()
    assert chain["contracts"][0]["strike"] == "190"
    r = client.post("/api/v1/options/quotes/batch", {"option_symbols": ["AAPL260116C00190000", "BAD"]}, content_type="application/json")
    assert r.json()["results"][1]["error"]["code"] == "invalid_symbol"


def test_unexpected_error_in_the_balance_check_fails_the_record_cleanly(trader, world, monkeypatch, caplog):
    from django.db import DatabaseError

    def boom(*args, **kwargs):
        raise DatabaseError("could not extend file")

    monkeypatch.setattr("trading.balance.BalanceSnapshot.objects.create", boom)
    r = post(trader, {**ORDER, "client_order_id": "db-1"})
    assert r.status_code == 500, r.json()
    assert r.json()["error"]["code"] == "internal_error" and "DatabaseError" in r.json()["error"]["message"]
    rec = OrderRecord.objects.get()
    assert (rec.outcome, rec.http_status, rec.error_code) == ("failed", 500, "internal_error")
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="order.failed", object_id=str(rec.pk)).exists()
    assert world.submits() == []
    monkeypatch.undo()
    monkeypatch.setattr("accounts.broker.broker_for", world.broker_for)
    monkeypatch.setattr("accounts.broker.market_data", world.market_data)
    r = post(trader, {**ORDER, "client_order_id": "db-1"})  # a failed attempt may be retried
    assert r.status_code == 201, r.json()


def test_database_outage_in_the_balance_check_answers_503_and_fails_the_record(trader, world, monkeypatch):
    """A PostgreSQL restart between the reservation and the broker call (seen in the outage test)."""
    from django.db import OperationalError

    def gone(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr("trading.balance.BalanceSnapshot.objects.create", gone)
    r = post(trader, {**ORDER, "client_order_id": "db-2"})
    assert r.status_code == 503, r.json()
    assert r.json()["error"]["code"] == "database_unavailable" and r["Retry-After"] == "5"
    rec = OrderRecord.objects.get()
    assert (rec.outcome, rec.http_status, rec.error_code) == ("failed", 503, "database_unavailable")
    assert world.submits() == []
    monkeypatch.undo()
    monkeypatch.setattr("accounts.broker.broker_for", world.broker_for)
    monkeypatch.setattr("accounts.broker.market_data", world.market_data)
    r = post(trader, {**ORDER, "client_order_id": "db-2"})  # the retry the 503 asks for
    assert r.status_code == 201, r.json()


def test_option_symbol_with_a_key_like_root_survives_logs_and_audit(trader, world, caplog):
    r = post(trader, {**OPTION, "option_symbol": "AKAM260116C00190000"}, "/api/v1/options/order")
    assert r.status_code == 201, r.json()
    from audit.models import AuditEvent

    event = AuditEvent.objects.get(action="order.submitted")
    assert event.data["order"]["symbol"] == "AKAM260116C00190000"
    from opitios.logging import mask_secrets

    # the log handlers' masking filter (caplog sits before the handlers)
    assert any("symbol=AKAM260116C00190000" in mask_secrets(m) for m in caplog.messages)


def _order_at_broker(world, client_order_id, **fields):
    values = {"symbol": "AAPL", "side": "buy", "type": "market", "time_in_force": "day", "qty": Decimal(1), **fields}
    return FakeBroker("account_001", world.state("account_001"), world)._store(OrderRequest(client_order_id=client_order_id, **values))


def test_duplicate_client_order_id_from_the_broker_is_recovered_not_rejected(trader, world, monkeypatch):
    """The retry asks the broker, which does not list the order yet; the resubmission then hears 422
    "client_order_id must be unique": the order is live, so the attempt is accepted (recovered)."""
    world.faults["submit_order"] = BrokerUnavailable("upstream 503", upstream_status=503)
    assert post(trader, {**ORDER, "client_order_id": "d-1"}).status_code == 503
    existing = _order_at_broker(world, "d-1")  # it reached the broker after all, but is not listed yet:
    lookups = []
    real = FakeBroker.get_order_by_client_id

    def lagging(self, client_order_id):
        lookups.append(client_order_id)
        return None if len(lookups) == 1 else real(self, client_order_id)

    monkeypatch.setattr(FakeBroker, "get_order_by_client_id", lagging)
    r = post(trader, {**ORDER, "client_order_id": "d-1"})
    assert r.status_code == 201 and r.json()["recovered"] is True and r.json()["id"] == existing.id, r.json()
    assert len(world.submits()) == 2 and len(lookups) == 2
    assert list(OrderRecord.objects.order_by("attempt").values_list("outcome", flat=True)) == ["failed", "accepted"]


def test_duplicate_on_submit_recovers_the_live_order(trader, world, monkeypatch):
    existing = _order_at_broker(world, "d-2")
    r = post(trader, {**ORDER, "client_order_id": "d-2"})  # new here, already at the broker (e.g. another gateway)
    assert r.status_code == 201 and r.json()["recovered"] is True and r.json()["id"] == existing.id, r.json()
    rec = OrderRecord.objects.get(client_order_id="d-2")
    assert (rec.outcome, rec.broker_order_id) == ("accepted", existing.id)
    _order_at_broker(world, "d-3", symbol="TSLA")
    r = post(trader, {**ORDER, "client_order_id": "d-3"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_conflict"
    assert OrderRecord.objects.get(client_order_id="d-3").outcome == "refused"


def test_outcome_not_written_logs_the_broker_order_at_error_then_recovers_with_broker_time(trader, world, monkeypatch, settings, caplog):
    from django.db import OperationalError

    import trading.outcome as order_services

    settings.FINALISE_RETRY_SECONDS = 0
    real_write = order_services._write_outcome_once

    def db_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(order_services, "_write_outcome_once", db_gone)
    r = post(trader, {**ORDER, "client_order_id": "lost-db"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
    placed = world.state("account_001").orders["lost-db"]
    lines = [rec for rec in caplog.records if "NOT RECORDED" in rec.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "ERROR"
    msg = lines[0].getMessage()
    assert f"order_id={placed.id}" in msg and "client_order_id=lost-db" in msg and "status=accepted" in msg
    assert "submitted_at=20" in msg and "responded_at=20" in msg and "broker_ms=" in msg
    rec = OrderRecord.objects.get()
    assert rec.outcome == "pending"  # the database never heard of it
    monkeypatch.setattr(order_services, "_write_outcome_once", real_write)
    OrderRecord.objects.filter(pk=rec.pk).update(received_at=timezone.now() - timedelta(minutes=5))  # stale pending
    r = post(trader, {**ORDER, "client_order_id": "lost-db"})
    assert r.status_code == 201 and r.json()["recovered"] is True and r.json()["id"] == placed.id, r.json()
    current = OrderRecord.objects.get(is_current=True)
    assert current.recovered and current.submitted_at == placed.submitted_at  # the broker's time, not the lookup's
    assert current.broker_ms is None and current.overhead_ms is None and current.total_ms >= 0
    assert len(world.submits()) == 1
