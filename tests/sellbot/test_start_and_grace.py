"""The sell bot's start reply tells the truth, and the watchdog gives a just-started bot or worker one
grace window before it calls a stall (issue 12). Control and status go through the API."""
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from opitios.auth import issue_token
from sellbot import services
from sellbot.models import SellBotState

from .test_views import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(config_file):
    return client_for(issue_token(user_id="ops-admin", permissions=["admin"]))


def test_start_says_starting_until_a_sweep_finishes_then_running(admin):
    admin.post("/api/v1/sell/control", {"action": "stop"}, format="json")
    reply = admin.post("/api/v1/sell/control", {"action": "start"}, format="json").json()
    assert (reply["enabled"], reply["status"], reply["running"], reply["healthy"]) == (True, "starting", False, True)
    health = admin.get("/api/v1/sell/health")
    assert health.status_code == 200 and health.json()["status"] == "starting"

    services.sweep_begin(sweep_id="s1", worker="w")
    services.sweep_finish(sweep_id="s1", started_at=timezone.now(), counts={})
    report = admin.get("/api/v1/sell").json()
    assert (report["status"], report["running"], report["healthy"]) == ("running", True, True)


def test_a_restarted_worker_gets_a_grace_window_then_a_real_stall_is_reported(admin, caplog):
    hour_ago = timezone.now() - timedelta(hours=1)
    SellBotState.objects.update_or_create(pk=1, defaults={"enabled": True, "status": "running", "changed_at": hour_ago,
                                                          "last_sweep_finished_at": hour_ago, "heartbeat_at": hour_ago})
    services.worker_started()  # what the worker_init signal does (opitios/celery.py)
    assert services.bot_watchdog(worker="w1") is False
    assert admin.get("/api/v1/sell/health").status_code == 200
    assert "sellbot stalled" not in caplog.text and not AuditEvent.objects.filter(action="sellbot.stalled").exists()

    # the window passes with no sweep: now it is a stall, reported once
    SellBotState.objects.filter(pk=1).update(worker_started_at=timezone.now() - timedelta(minutes=5))
    assert services.bot_watchdog(worker="w1") is True
    assert admin.get("/api/v1/sell/health").status_code == 503
    assert "sellbot stalled" in caplog.text and AuditEvent.objects.filter(action="sellbot.stalled").count() == 1
