"""ERROR means someone must act (issue 12): a routine refusal of one request (insufficient balance, a
throttle, a validation error) logs at INFO/WARNING, with the order line and the audit event unchanged.
Through the API to alpacasim."""
import logging

import pytest

from audit.models import AuditEvent
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

from .test_api_sim import ORDER, live, trader  # noqa: F401 - the live fixture

pytestmark = pytest.mark.django_db


def errors(caplog) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def test_insufficient_balance_is_a_warning_with_the_same_order_line_and_audit(live, caplog):  # noqa: F811
    caplog.set_level(logging.INFO)
    r = trader("account_003").post("/api/v1/stocks/order", ORDER, format="json")
    assert r.status_code == 422 and r.json()["error"]["code"] == "insufficient_balance"
    [line] = [rec for rec in caplog.records if rec.name == "opitios.trading.orders"]
    assert line.levelno == logging.WARNING
    assert "account=account_003" in line.getMessage() and "status=refused" in line.getMessage()
    assert "code=insufficient_balance" in line.getMessage() and "balance=insufficient" in line.getMessage()
    assert set(AuditEvent.objects.values_list("action", flat=True)) >= {"order.refused", "balance.insufficient"}
    assert errors(caplog) == []


def test_a_throttled_and_an_invalid_order_log_no_error(live, config_file, caplog):  # noqa: F811
    config_file.set("rate_limits", stock_order="2/min")
    caplog.set_level(logging.INFO)
    client = trader()
    invalid = client.post("/api/v1/stocks/order", {**ORDER, "qty": "-1"}, format="json")
    assert invalid.status_code == 400
    assert client.post("/api/v1/stocks/order", {**ORDER, "client_order_id": "lv-1"}, format="json").status_code == 201
    throttled = client.post("/api/v1/stocks/order", {**ORDER, "client_order_id": "lv-2"}, format="json")
    assert throttled.status_code == 429
    assert errors(caplog) == []
    assert [r.levelno for r in caplog.records if r.name == "django.request"] == [logging.WARNING, logging.WARNING]
