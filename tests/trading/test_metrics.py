"""/metrics through the Django stack: access rules, and the order, upstream and throttle series
moving with real requests (orders over alpaca-py to a running alpacasim)."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

from .test_api_sim import ORDER, live, trader  # noqa: F401 - the live fixture

pytestmark = pytest.mark.django_db

TOKEN = "m" * 24


def scrape(client=None, **extra) -> dict[tuple[str, tuple], float]:
    r = (client or APIClient()).get("/metrics", **extra)
    assert r.status_code == 200, r.content[:300]
    assert r["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.content.decode()) for s in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_without_a_token_only_loopback_may_scrape(config_file):
    assert APIClient().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert APIClient().get("/metrics", REMOTE_ADDR="::1").status_code == 200
    r = APIClient().get("/metrics", REMOTE_ADDR="10.1.2.3")
    assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"


def test_with_a_token_every_scrape_needs_it(config_file):
    config_file.set("metrics", token=TOKEN)
    for addr in ("127.0.0.1", "10.1.2.3"):
        r = APIClient().get("/metrics", REMOTE_ADDR=addr)
        assert r.status_code == 401 and r["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in r.content.decode()
        assert APIClient().get("/metrics", REMOTE_ADDR=addr, HTTP_AUTHORIZATION="Bearer wrong-token-wrong-token").status_code == 401
        assert APIClient().get("/metrics", REMOTE_ADDR=addr, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_a_short_token_is_a_config_error_and_loopback_only_applies(config_file):
    from opitios.config import current_config

    config_file.set("metrics", token="short")
    assert current_config().metrics.token is None
    assert any(e.startswith("metrics.token:") and "short" not in e for e in current_config().config_errors)
    assert APIClient().get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403


def test_orders_upstream_calls_and_db_collectors_move_with_real_orders(live, django_capture_on_commit_callbacks):  # noqa: F811
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        ok = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": "metrics-1"}, format="json")
        refused = trader().post("/api/v1/stocks/order", {**ORDER, "qty": "1000000", "client_order_id": "metrics-2"}, format="json")
    assert ok.status_code == 201, ok.json()
    assert refused.status_code >= 400
    code = refused.json()["error"]["code"]
    after = scrape()

    accepted = dict(outcome="accepted", source="api", account_type="paper", refusal_code="")
    assert value(after, "opitios_orders_total", **accepted) - value(before, "opitios_orders_total", **accepted) == 1
    moved = {k: v - before.get(k, 0) for k, v in after.items() if k[0] == "opitios_orders_total" and v != before.get(k, 0)}
    assert any(dict(k[1])["refusal_code"] == code and dict(k[1])["outcome"] in ("refused", "rejected") for k in moved), (code, moved)
    labels = dict(source="api", account_type="paper")
    for name in ("opitios_order_total_seconds_count", "opitios_order_broker_seconds_count", "opitios_order_overhead_seconds_count"):
        assert value(after, name, **labels) - value(before, name, **labels) >= 1, name
    # no per-account label unless allow-listed: the demo accounts count under "other"
    assert value(after, "opitios_upstream_calls_total", account="other", result="ok") > value(
        before, "opitios_upstream_calls_total", account="other", result="ok")
    assert not any(k[0] == "opitios_upstream_calls_total" and dict(k[1])["account"] == "account_001" for k in after)
    # collectors read the database at scrape time
    assert value(after, "opitios_accounts", account_type="paper", state="ok") >= 3
    assert value(after, "opitios_accounts", account_type="live", state="ok") >= 1
    assert value(after, "opitios_audit_chain_ok") == -1  # no chain check has run yet


def test_an_allow_listed_account_gets_its_own_label(live, config_file):  # noqa: F811
    config_file.set("metrics", account_labels=["account_001"])
    before = scrape()
    r = trader().get("/api/v1/account")
    assert r.status_code == 200, r.json()
    after = scrape()
    assert value(after, "opitios_upstream_calls_total", account="account_001", result="ok") > value(
        before, "opitios_upstream_calls_total", account="account_001", result="ok")


def test_throttled_requests_are_counted_by_scope(config_file):
    config_file.set("rate_limits", stock_quote="1/min")
    before = scrape()
    statuses = [APIClient().get("/api/v1/stocks/AAPL/quote", REMOTE_ADDR="10.9.9.9").status_code for _ in range(3)]
    assert statuses.count(429) == 2, statuses
    after = scrape()
    assert value(after, "opitios_throttled_requests_total", scope="stock_quote") - value(
        before, "opitios_throttled_requests_total", scope="stock_quote") == 2


def test_upstream_429s_are_counted(live):  # noqa: F811
    live.set_fault("account", status=429, count=1)
    before = scrape()
    r = trader().get("/api/v1/account")
    assert r.status_code == 429 and r.json()["error"]["code"] == "upstream_rate_limited", r.json()
    after = scrape()
    assert value(after, "opitios_upstream_429_total", account="other") - value(before, "opitios_upstream_429_total", account="other") == 1
    assert value(after, "opitios_upstream_calls_total", account="other", result="error") > value(
        before, "opitios_upstream_calls_total", account="other", result="error")


def test_an_accepted_order_resolves_the_balance_alert_then_skips_the_read_for_a_while(monkeypatch):
    from audit.models import AuditEvent
    from opitios.alerts import alert_active
    from trading import metrics as order_metrics

    monkeypatch.setattr(order_metrics, "_quiet_until", {})
    reads = []
    real = order_metrics.alert_resolve
    monkeypatch.setattr(order_metrics, "alert_resolve", lambda key, *a: (reads.append(key), real(key, *a)))
    accepted = AuditEvent(action="order.submitted", account_id=4242, data={"source": "api", "account_type": "paper"})
    unverified = AuditEvent(action="balance.unverified", account_id=4242, data={})

    order_metrics.balance_unverified(unverified)
    assert alert_active("balance_unverified:4242")
    order_metrics.order_observed(accepted)
    assert not alert_active("balance_unverified:4242") and len(reads) == 1
    order_metrics.order_observed(accepted)  # within QUIET_SECONDS: no read of the shared cache
    assert len(reads) == 1
    order_metrics.balance_unverified(unverified)  # a raise this process sees ends the pause
    order_metrics.order_observed(accepted)
    assert not alert_active("balance_unverified:4242") and len(reads) == 2
    monkeypatch.setattr(order_metrics, "_quiet_until", {4242: 0.0})  # the pause over: read again
    order_metrics.order_observed(accepted)
    assert len(reads) == 3
