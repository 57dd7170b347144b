"""Alerts to a human, delivered by Apprise to a webhook receiver this test starts (json://).

Sending runs as the Celery task (eager here, so the test sees it finish); the resolve hold's
countdown is stood in for by running the scheduled task by hand."""
from __future__ import annotations

import json

import pytest
import yaml
from django.core.cache import cache
from django.utils import timezone

from opitios import alerts
from opitios.config import current_config
from opitios.logging import register_secret

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs at once, as in production


@pytest.fixture
def alerting(tmp_path, monkeypatch, receiver, alert_holds):
    path = tmp_path / "secrets.yml"
    path.write_text(yaml.safe_dump({"alerts": {"urls": [receiver.url], "repeat_minutes": 60}}))
    monkeypatch.setenv("OPITIOS_SECRETS", str(path))
    cache.clear()
    assert current_config().alerts.urls == [receiver.url]
    yield alert_holds
    cache.clear()


def test_a_flapping_condition_sends_one_message_and_one_resolved(alerting, receiver):
    scheduled = alerting
    assert alerts.alert_raise("sellbot_stalled", "sell bot stalled", "no sweep finished within 15s")
    assert not alerts.alert_raise("sellbot_stalled", "sell bot stalled")  # still raised: nothing new
    alerts.alert_resolve("sellbot_stalled")
    assert not alerts.alert_raise("sellbot_stalled", "sell bot stalled")  # back within the hold: silent
    assert not alerts.resolve_after_hold(*scheduled[-1])  # that hold ends with the condition raised
    alerts.alert_resolve("sellbot_stalled")
    alerts.alert_resolve("sellbot_stalled")  # a second resolve supersedes the first hold
    assert not alerts.resolve_after_hold(*scheduled[-2])
    assert alerts.resolve_after_hold(*scheduled[-1])
    titles = [m["title"] for m in receiver.wait(2)]
    assert titles == ["[Opitios] sell bot stalled", "[Opitios] resolved: sell bot stalled"]
    assert not alerts.alert_active("sellbot_stalled")


def test_a_condition_raised_past_the_repeat_interval_sends_a_reminder(alerting, receiver):
    alerts.alert_raise("stream_down:trade_updates", "stream down: trade_updates")
    state = cache.get(alerts.PREFIX + "stream_down:trade_updates")
    cache.set(alerts.PREFIX + "stream_down:trade_updates", {**state, "notified_at": state["notified_at"] - 3601}, timeout=None)
    assert alerts.alert_raise("stream_down:trade_updates", "stream down: trade_updates")
    assert [m["title"] for m in receiver.wait(2)] == ["[Opitios] stream down: trade_updates", "[Opitios] still: stream down: trade_updates"]


def test_a_secret_never_reaches_the_receiver(alerting, receiver):
    register_secret("PKSECRETVALUE12345")
    alerts.alert_raise("detection_failed:acct", "detection failed", "Alpaca said: bad key PKSECRETVALUE12345")
    [message] = receiver.wait(1)
    assert "PKSECRETVALUE12345" not in json.dumps(message) and "****" in message["message"]


def test_a_receiver_error_is_retried_until_delivered(alerting, receiver):
    receiver.fail_next = 2
    alerts.alert_raise("audit_chain_broken", "audit chain broken")
    assert [m["title"] for m in receiver.wait(1)] == ["[Opitios] audit chain broken"]
    assert len(receiver.messages) == 3


def test_a_broken_audit_chain_check_and_a_type_mismatch_alert(alerting, receiver):
    from accounts.models import AlpacaAccount
    from audit.models import AuditChainCheck

    AuditChainCheck.objects.create(ran_at=timezone.now(), ok=False, count=10, first_broken_seq=7, reason="hash mismatch")
    account = AlpacaAccount.objects.create(account_id="acct_x", paper_trading=True, api_key_encrypted="x", secret_key_encrypted="x")
    account.account_type, account.type_mismatch = "live", True
    account.save(update_fields=["account_type", "type_mismatch"])
    titles = [m["title"] for m in receiver.wait(2)]
    assert titles == ["[Opitios] audit chain broken", "[Opitios] account type mismatch: acct_x"]


def test_bad_alert_urls_are_config_errors_that_never_stop_the_start(tmp_path, monkeypatch):
    path = tmp_path / "secrets.yml"
    path.write_text(yaml.safe_dump({"alerts": {"urls": ["discord://id/token-abc", "not a url token-xyz", 5], "repeat_minutes": 0}}))
    monkeypatch.setenv("OPITIOS_SECRETS", str(path))
    config = current_config()
    assert config.alerts.urls == ["discord://id/token-abc"]
    errors = [e for e in config.config_errors if e.startswith("alerts.")]
    assert sorted(e.split(":")[0] for e in errors) == ["alerts.repeat_minutes", "alerts.urls[1]", "alerts.urls[2]"]
    assert not any("token-xyz" in e for e in errors)
    path.write_text(yaml.safe_dump({"alerts": {"urls": "json://one"}}))
    assert current_config().alerts.urls == [] and any(e.startswith("alerts.urls:") for e in current_config().config_errors)


def test_a_cache_outage_never_fails_what_raised_the_alert(alerting, receiver, monkeypatch, caplog):
    def down(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(cache, "add", down)
    monkeypatch.setattr(cache, "get", down)
    assert alerts.alert_raise("sellbot_stalled", "sell bot stalled") is False
    alerts.alert_resolve("sellbot_stalled")
    assert "alert sellbot_stalled not recorded: ConnectionError" in caplog.text
