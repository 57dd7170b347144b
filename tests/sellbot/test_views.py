"""The sell-bot API through DRF (docs/api.md, "Sell bot"): control audited, status metrics, health
200/503, admin only. The bot's state lives in the database, so these need no worker."""
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from sellbot.models import SellBotState, SellCancellation, SellCounter
from tests.trading.conftest import client_for, token

from .factories import ManagedPositionFactory, SellCancellationFactory, SellDecisionFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = [("get", "/api/v1/sell"), ("get", "/api/v1/sell/health"), ("post", "/api/v1/sell/control")]


@pytest.fixture
def admin(config_file):
    return client_for(token(user_id="ops-admin", permissions=("admin",), account_id=None))


def state() -> SellBotState:
    return SellBotState.objects.get(pk=1)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_anonymous_gets_401(config_file, method, path):
    response = getattr(client_for(), method)(path, {"action": "start"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("not_authenticated", "invalid_token")


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_trader_without_admin_gets_403(config_file, method, path):
    trader = client_for(token(permissions=("account_access", "trading", "market_data")))
    response = getattr(trader, method)(path, {"action": "stop"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert not AuditEvent.objects.filter(action__startswith="sellbot.").exists()


def test_control_stop_start_restart_are_audited_with_the_actor(admin):
    body = admin.post("/api/v1/sell/control", {"action": "stop"}, format="json").json()
    assert (body["enabled"], body["status"], body["changed_by"]) == (False, "stopped", "ops-admin")
    assert admin.post("/api/v1/sell/control", {"action": "start"}, format="json").json()["enabled"] is True
    response = admin.post("/api/v1/sell/control", {"action": "restart"}, format="json")
    assert response.status_code == 200 and (response.json()["status"], response.json()["running"]) == ("starting", False)
    events = list(AuditEvent.objects.filter(action__startswith="sellbot.").order_by("seq").values_list("action", "actor_type", "actor_id", "data"))
    assert [e[:3] for e in events] == [
        ("sellbot.stopped", "admin", "ops-admin"), ("sellbot.started", "admin", "ops-admin"),
        ("sellbot.stopped", "admin", "ops-admin"), ("sellbot.started", "admin", "ops-admin"),
    ]
    assert [e[3]["action"] for e in events] == ["stop", "start", "restart", "restart"]
    assert state().enabled is True


@pytest.mark.parametrize("body", [{}, {"action": "pause"}, {"action": ""}, {"action": ["start"]}])
def test_control_refuses_a_bad_action_and_changes_nothing(admin, body):
    response = admin.post("/api/v1/sell/control", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"
    assert not AuditEvent.objects.filter(action__startswith="sellbot.").exists()


def test_control_refuses_malformed_json(admin):
    response = admin.generic("POST", "/api/v1/sell/control", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] in ("malformed_request", "validation_error")


def test_status_reports_the_last_sweep_and_the_metrics(admin):
    now = timezone.now()
    SellBotState.objects.update_or_create(pk=1, defaults={
        "enabled": True, "status": "running", "heartbeat_at": now, "last_sweep_id": "abc123",
        "last_sweep_started_at": now - timedelta(milliseconds=250), "last_sweep_finished_at": now, "last_sweep_duration_ms": 250.0,
        "last_sweep_counts": {"accounts": 3, "dispatched": 3}, "worker": "w1@host:42", "changed_at": now - timedelta(hours=1),
    })
    position = ManagedPositionFactory()
    ManagedPositionFactory(account=position.account, status="closed")
    ManagedPositionFactory(account=position.account, opted_in=False)  # not counted: never managed
    SellDecisionFactory(position=position, outcome="placed")
    SellDecisionFactory(position=position, attempt=2, outcome="rejected")
    SellDecisionFactory(position=position, attempt=3, outcome="pending")
    SellCancellationFactory(outcome="canceled")
    SellCancellationFactory(outcome="already_final")
    SellCancellationFactory(outcome="failed")
    SellCancellationFactory(outcome="retrying")
    old = SellCancellationFactory(outcome="canceled")
    SellCancellation.objects.filter(pk=old.pk).update(created_at=now - timedelta(hours=2))
    SellCounter.objects.create(name="price_fetch_failure:broker_timeout", value=4)

    response = admin.get("/api/v1/sell")
    assert response.status_code == 200
    body = response.json()
    assert (body["enabled"], body["running"], body["status"], body["healthy"]) == (True, True, "running", True)
    assert body["last_sweep"]["id"] == "abc123" and body["last_sweep"]["duration_ms"] == 250.0
    assert body["last_sweep"]["counts"] == {"accounts": 3, "dispatched": 3} and body["last_sweep"]["worker"] == "w1@host:42"
    assert body["positions"] == {"open": 1, "closing": 0, "closed": 1}  # the opted-out one is not managed
    assert body["orders"] == {"placed": 2, "succeeded": 1, "failed": 1}
    assert body["cancellations"] == {"succeeded": 3, "failed": 1, "retrying": 1}
    assert body["price_fetch_failures"] == {"broker_timeout": 4}
    rates = body["success_rates"]
    assert rates["orders"]["last_hour"] == {"total": 2, "succeeded": 1, "rate": 0.5}
    assert rates["cancellations"]["last_hour"]["total"] == 3 and rates["cancellations"]["last_24h"]["total"] == 4
    assert isinstance(body["workers"], list)  # no worker runs beside this test: an empty list, not an error


def test_health_is_200_when_running_or_stopped_and_503_when_stalled(admin):
    now = timezone.now()
    SellBotState.objects.update_or_create(pk=1, defaults={"enabled": True, "status": "running", "last_sweep_finished_at": now,
                                                          "heartbeat_at": now, "changed_at": now - timedelta(hours=1)})
    response = admin.get("/api/v1/sell/health")
    assert response.status_code == 200 and response.json()["status"] == "running"

    SellBotState.objects.filter(pk=1).update(last_sweep_finished_at=now - timedelta(minutes=5), heartbeat_at=now - timedelta(minutes=5))
    response = admin.get("/api/v1/sell/health")
    body = response.json()
    assert response.status_code == 503 and (body["status"], body["healthy"], body["enabled"]) == ("stalled", False, True)
    assert "no sweep finished" in body["reason"]
    assert admin.get("/api/v1/sell").json()["running"] is False

    admin.post("/api/v1/sell/control", {"action": "stop"}, format="json")
    response = admin.get("/api/v1/sell/health")
    assert response.status_code == 200 and response.json()["status"] == "stopped"  # stopped on purpose is healthy


def test_detailed_health_has_the_sell_bot_section(admin):
    now = timezone.now()
    SellBotState.objects.update_or_create(pk=1, defaults={"enabled": True, "status": "running", "changed_at": now - timedelta(hours=1),
                                                          "last_sweep_finished_at": now - timedelta(minutes=10), "heartbeat_at": now - timedelta(minutes=10),
                                                          "last_sweep_counts": {"accounts": 7}})
    section = admin.get("/api/v1/health/detailed").json()["checks"]["sellbot"]
    assert (section["status"], section["bot_status"], section["enabled"]) == ("degraded", "stalled", True)
    assert 590 <= section["heartbeat_age_seconds"] <= 700 and section["last_sweep_counts"] == {"accounts": 7}

    admin.post("/api/v1/sell/control", {"action": "stop"}, format="json")
    section = admin.get("/api/v1/health/detailed").json()["checks"]["sellbot"]
    assert (section["status"], section["bot_status"], section["enabled"]) == ("ok", "stopped", False)
