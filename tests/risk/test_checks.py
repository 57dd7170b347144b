"""The new pre-trade checks against alpacasim: each refusal has its code, its OrderRecord and its audit event."""
from __future__ import annotations

import pytest

from audit.models import AuditEvent
from trading.models import OrderRecord

from .conftest import buy, sell, trader

pytestmark = pytest.mark.django_db


def _refused(r, code: str) -> OrderRecord:
    assert r.json().get("error", {}).get("code") == code, r.json()
    record = OrderRecord.objects.get(client_order_id=r.json()["error"]["details"]["client_order_id"])
    assert record.outcome == "refused" and record.error_code == code and record.submitted_at is None
    event = AuditEvent.objects.get(action="order.refused", object_id=str(record.pk))
    assert event.data["error"]["code"] == code
    return record


def test_price_collar_refuses_a_limit_far_from_the_quote_and_fails_open_without_one(live, config_file):
    live.set_price("AAPL", 100.0)
    config_file.set("trading", price_collar_pct=5)
    c = trader()
    r = buy(c, type="limit", limit_price="120.00", time_in_force="gtc")
    assert r.status_code == 422
    _refused(r, "price_collar")
    assert r.json()["error"]["details"]["reference_source"] == "rest"
    assert buy(c, type="limit", limit_price="101.00", time_in_force="gtc").status_code == 201
    # the quote route fails: no reference price, the order passes (with a warning)
    live.set_fault("data_quotes", status=503)
    r = buy(c, type="limit", limit_price="150.00", time_in_force="gtc")
    assert r.status_code == 201, r.json()


def test_price_collar_per_account_override(live, config_file):
    live.set_price("AAPL", 100.0)
    config_file.set("trading", price_collar_pct=5)
    config_file.data["accounts"]["account_002"]["price_collar_pct"] = 50
    config_file.write()
    assert buy(trader("account_002"), type="limit", limit_price="120.00", time_in_force="gtc").status_code == 201
    assert buy(trader("account_001"), type="limit", limit_price="120.00", time_in_force="gtc").status_code == 422


def test_restricted_symbol_refuses_buys_and_allows_a_reducing_sell(live, config_file):
    c = trader()
    assert buy(c, qty="2").status_code == 201
    config_file.set("trading", restricted_symbols=["AAPL"])
    r = buy(c)
    assert r.status_code == 422
    _refused(r, "symbol_restricted")
    assert sell(c, qty="1").status_code == 201
    assert buy(c, symbol="MSFT").status_code == 201


def test_open_order_cap(live, config_file):
    c = trader()
    config_file.set("trading", max_open_orders=2)
    for _ in range(2):
        assert buy(c, type="limit", limit_price="1.00", time_in_force="gtc").status_code == 201
    r = buy(c, type="limit", limit_price="1.00", time_in_force="gtc")
    assert r.status_code == 422
    _refused(r, "open_order_limit")
    assert r.json()["error"]["details"]["open_orders"] == 2


def test_order_rate_cap_per_account(live, config_file):
    config_file.set("trading", max_orders_per_second=2)
    c = trader()
    responses = [buy(c) for _ in range(6)]
    codes = [r.status_code for r in responses]
    assert 201 in codes and 429 in codes, codes
    limited = [r for r in responses if r.status_code == 429 and r.json()["error"]["code"] == "order_rate_exceeded"]
    assert limited and all(int(r["Retry-After"]) >= 1 for r in limited)  # trading/errors.py's table: the window's own seconds
    refused = OrderRecord.objects.filter(error_code="order_rate_exceeded")
    assert refused.exists()
    assert AuditEvent.objects.filter(action="order.refused", object_id=str(refused.first().pk)).exists()
    # another account has its own budget
    assert buy(trader("account_002")).status_code == 201


def test_price_collar_uses_the_fresh_streamed_quote_first(live, config_file):
    import time

    from opitios import lastvalue

    live.set_price("AAPL", 100.0)  # REST would say 100
    config_file.set("trading", price_collar_pct=5)
    config_file.set("market_data", max_quote_age_ms=5000)
    lastvalue.put(lastvalue.key("q", "AAPL"), {"bid": 199.9, "ask": 200.0, "bid_size": 1, "ask_size": 1,
                                                "timestamp": "2026-01-02T15:00:00Z", "received_at": time.time()})
    r = buy(trader(), type="limit", limit_price="100.00", time_in_force="gtc")
    _refused(r, "price_collar")
    assert r.json()["error"]["details"]["reference_source"] == "stream"
    assert r.json()["error"]["details"]["reference_price"] == "200.0"
