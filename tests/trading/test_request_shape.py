"""Issue 12: no 5xx from a request's shape. Whatever reaches Django answers with the JSON error body."""
from __future__ import annotations

import json

import pytest

from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

from .conftest import client_for, token
from .test_api_sim import live, sim_orders  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def _trader():
    return client_for(token(user_id="shape", permissions=("account_access", "trading", "bulk_trading"), account_id="account_001"))


@pytest.mark.parametrize("path", ["/api/v1/stocks/order", "/api/v1/orders/bulk", "/api/v1/stocks/quotes/batch"])
def test_a_10_mb_body_is_a_413(live, path):  # noqa: F811
    body = json.dumps({"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day", "pad": "x" * 10_000_000})
    error = error_of(_trader().generic("POST", path, body, content_type="application/json"), 413)
    assert error["code"] == "request_too_large"
    assert sim_orders(live) == []


@pytest.mark.parametrize("shape", ["[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000])
def test_json_nested_10000_deep_is_a_400(live, shape):  # noqa: F811
    error = error_of(_trader().generic("POST", "/api/v1/stocks/order", shape, content_type="application/json"), 400)
    assert error["code"] == "malformed_request"
    assert sim_orders(live) == []


@pytest.mark.parametrize("query", ["start=0001-01-01", "end=0001-01-01", "start=9999-12-31", "start=1999-12-31T23:59:59Z",
                                   "start=2024-01-01&end=9999-12-31T23:59:59Z"])
def test_bars_outside_a_sane_range_are_a_400_before_the_broker(live, query):  # noqa: F811
    error = error_of(_trader().get(f"/api/v1/stocks/AAPL/bars?{query}"), 400)
    assert error["code"] == "invalid_request"


def test_bars_inside_the_range_still_work(live):  # noqa: F811
    r = _trader().get("/api/v1/stocks/AAPL/bars?timeframe=1Day&limit=5&start=2020-01-01")
    assert r.status_code == 200, r.json()


def test_a_refusal_outside_drf_views_is_the_json_error_body(client, settings):
    """Django's own 400 (here DisallowedHost, raised in middleware) answers with the JSON body under /api/."""
    settings.ALLOWED_HOSTS = ["gateway.example"]
    error = error_of(client.get("/api/v1/health", HTTP_HOST="evil.example"), 400)
    assert error["code"] == "malformed_request"
    assert client.get("/admin/login/", HTTP_HOST="evil.example").status_code == 400  # the admin keeps Django's page
