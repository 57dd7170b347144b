"""Scoped throttles on the shared cache: limits from rate_limits, X-RateLimit-* headers, 429 with
Retry-After, per user or per IP, and fail-open when the store is down."""
import pytest

from opitios.health import detailed_report

from .conftest import client_for, token

pytestmark = pytest.mark.django_db


def test_stock_quote_scope_limit_and_headers(config_file, demo_accounts, world, client):
    config_file.set("rate_limits", stock_quote="2/min")
    r1 = client.get("/api/v1/stocks/AAPL/quote")
    assert r1.status_code == 200 and r1["X-RateLimit-Limit"] == "2" and r1["X-RateLimit-Remaining"] == "1"
    assert int(r1["X-RateLimit-Reset"]) > 0 and "Retry-After" not in r1
    client.get("/api/v1/stocks/AAPL/quote")
    r3 = client.get("/api/v1/stocks/AAPL/quote")
    assert r3.status_code == 429 and r3.json()["error"]["code"] == "rate_limited"
    assert int(r3["Retry-After"]) >= 1 and r3["X-RateLimit-Remaining"] == "0"
    # another scope is counted separately; a token holder is counted per user, not per IP
    assert client.get("/api/v1/stocks/AAPL/bars").status_code == 200
    assert client_for(token()).get("/api/v1/stocks/AAPL/quote").status_code == 200


def test_stock_order_default_is_ten_per_minute(config_file, demo_accounts, world):
    config_file.data["rate_limits"].pop("stock_order")
    config_file.write()
    c = client_for(token())
    body = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
    codes = [c.post("/api/v1/stocks/order", body, format="json").status_code for _ in range(11)]
    assert codes[:10] == [201] * 10 and codes[10] == 429


def test_fails_open_when_store_is_down(config_file, demo_accounts, world, client, monkeypatch, caplog):
    class Broken:
        def incr(self, *a, **k):
            raise ConnectionError("redis down")

    monkeypatch.setattr("accounts.budget.counters", Broken())
    monkeypatch.setattr("opitios.health.check_workers", lambda: {"status": "ok"})
    assert client.get("/api/v1/stocks/AAPL/quote").status_code == 200
    assert "failing open" in caplog.text
    assert detailed_report()["checks"]["throttling"]["status"] == "degraded"
