"""Honest timing over the real path (APIClient -> middleware -> DRF -> alpaca-py -> alpacasim): the
receive time is stamped by the first middleware, and the whole time to the built response is
logged and sent as Server-Timing (docs/architecture.md, "Order timing")."""
from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import pytest

from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from trading.models import OrderRecord

from .test_api_sim import ORDER, live, trader  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

_second_middleware_at: list[datetime] = []


class SecondMiddleware:
    """Stands for every middleware after the first: notes when it ran."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _second_middleware_at.append(datetime.now(UTC))
        return self.get_response(request)


@pytest.fixture
def second_middleware(settings):
    _second_middleware_at.clear()
    first, *rest = settings.MIDDLEWARE
    assert first == "opitios.request_timing.RequestTimingMiddleware"
    settings.MIDDLEWARE = [first, f"{__name__}.SecondMiddleware", *rest]
    return _second_middleware_at


def test_received_at_is_stamped_before_the_other_middleware(live, second_middleware, caplog):  # noqa: F811
    caplog.set_level(logging.INFO)
    r = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": "timing-1"}, format="json")
    assert r.status_code == 201, r.json()
    rec = OrderRecord.objects.get(client_order_id="timing-1")
    assert rec.received_at <= second_middleware[0] <= rec.submitted_at
    server_ms = float(re.fullmatch(r"app;dur=([0-9.]+)", r["Server-Timing"]).group(1))
    # The request total covers the record's total and what follows it: rendering, the log line.
    assert server_ms >= rec.total_ms > rec.broker_ms > 0
    logged = [m.getMessage() for m in caplog.records if "request_total_ms=" in m.getMessage()]
    # The order's own line carries it (held until the response was built), not a separate request line.
    assert len(logged) == 1 and logged[0].endswith(f"request_total_ms={server_ms}")
    assert logged[0].startswith("order account=") and "client_order_id=timing-1 " in logged[0]
    assert f"total_ms={rec.total_ms} " in logged[0]


def test_a_replayed_order_line_carries_the_request_total(live, caplog):  # noqa: F811
    caplog.set_level(logging.INFO)
    body = {**ORDER, "client_order_id": "timing-replay"}
    assert trader().post("/api/v1/stocks/order", body, format="json").status_code == 201
    caplog.clear()
    r = trader().post("/api/v1/stocks/order", body, format="json")
    assert r.status_code == 201 and r["Idempotent-Replayed"] == "true"
    server_ms = float(re.fullmatch(r"app;dur=([0-9.]+)", r["Server-Timing"]).group(1))
    logged = [m.getMessage() for m in caplog.records if "request_total_ms=" in m.getMessage()]
    assert len(logged) == 1 and "status=replayed" in logged[0] and logged[0].endswith(f"request_total_ms={server_ms}")


def test_a_refused_order_is_timed_too(live, caplog):  # noqa: F811
    caplog.set_level(logging.INFO)
    r = trader().post("/api/v1/stocks/order", {**ORDER, "qty": "-1"}, format="json")
    assert r.status_code == 400
    assert r["Server-Timing"].startswith("app;dur=")
    assert any(re.search(r"status=400 request_total_ms=[0-9.]+$", m.getMessage()) for m in caplog.records)


def test_quotes_are_not_logged_per_request(live, caplog):  # noqa: F811
    caplog.set_level(logging.INFO)
    r = trader().get("/api/v1/stocks/AAPL/quote")
    assert r.status_code == 200, r.json()
    assert r["Server-Timing"].startswith("app;dur=")
    assert not [m for m in caplog.records if "request_total_ms=" in m.getMessage()]


def test_the_order_request_total_is_exported(live, config_file):  # noqa: F811
    from .test_metrics import scrape, value

    before = value(scrape(), "opitios_order_request_total_seconds_count")
    assert trader().post("/api/v1/stocks/order", ORDER, format="json").status_code == 201
    assert trader().get("/api/v1/stocks/AAPL/quote").status_code == 200  # not an order route: not observed
    after = scrape()
    assert value(after, "opitios_order_request_total_seconds_count") == before + 1
    assert value(after, "opitios_order_request_total_seconds_sum") > 0
