"""The kill switch's other ways in and out: the management command (no API), the admin actions, the
alert it raises, and its config keys (an invalid value is a config error, never a failed start)."""
from __future__ import annotations

import io

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from accounts.models import AlpacaAccount
from audit.models import AuditEvent
from opitios.config import parse_config
from risk.models import TradingState
from risk.states import trading_state_effective, trading_state_set
from tests.opitios.test_alerts import alerting  # noqa: F401 - fixture


def _account(account_id="acct_r"):
    return AlpacaAccount.objects.create(account_id=account_id, paper_trading=True, api_key_encrypted="x", secret_key_encrypted="x")


@pytest.mark.django_db
def test_management_command_sets_and_shows_states_audited():
    account = _account()
    out = io.StringIO()
    call_command("trading_state", "set", "halted", "--reason", "API down, halting", stdout=out)
    assert "global: active -> halted (set)" in out.getvalue()
    call_command("trading_state", "set", "reducing", "--reason", "wind down", "--account", "acct_r", stdout=out)
    assert trading_state_effective(account=account).state == "halted"
    call_command("trading_state", "set", "active", "--reason", "ok", stdout=out)
    effective = trading_state_effective(account=account)
    assert (effective.state, effective.reason, effective.scope) == ("reducing", "wind down", "account:acct_r")
    shown = io.StringIO()
    call_command("trading_state", "show", stdout=shown)
    lines = shown.getvalue().splitlines()
    assert lines[0].startswith("global") and " active " in lines[0]
    assert lines[1].startswith("account:acct_r") and "wind down" in lines[1]
    events = AuditEvent.objects.filter(action="risk.state_changed").order_by("seq")
    assert [e.data["new_state"] for e in events] == ["halted", "reducing", "active"]
    assert all(e.actor_type == "system" and e.actor_id.startswith("manage.py:") for e in events)
    with pytest.raises(CommandError):
        call_command("trading_state", "set", "halted", "--reason", "x", "--account", "nope")
    with pytest.raises(CommandError):
        call_command("trading_state", "set", "halted", "--reason", "  ")


@pytest.mark.django_db
def test_admin_actions_need_a_reason_and_call_the_audited_service():
    account = _account()
    get_user_model().objects.create_superuser("root", password="pw")
    browser = Client()
    browser.login(username="root", password="pw")
    url = "/admin/accounts/alpacaaccount/"
    r = browser.post(url, {"action": "trading_state_halted", "_selected_action": [account.pk], "reason": ""}, follow=True)
    assert r.status_code == 200 and "Give a reason" in r.content.decode()
    assert not TradingState.objects.exists()
    r = browser.post(url, {"action": "trading_state_halted", "_selected_action": [account.pk], "reason": "margin call"}, follow=True)
    assert r.status_code == 200 and "1 trading state(s) set to halted" in r.content.decode()
    assert trading_state_effective(account=account).reason == "margin call"
    event = AuditEvent.objects.get(action="risk.state_changed")
    assert event.actor_type == "admin" and event.actor_id == "root" and event.data["new_state"] == "halted"
    # the state list: the global row is always there to act on
    page = browser.get("/admin/risk/tradingstate/")
    assert page.status_code == 200
    glob = TradingState.objects.get(scope="global")
    r = browser.post("/admin/risk/tradingstate/", {"action": "trading_state_reducing", "_selected_action": [glob.pk],
                                                    "reason": "desk drill"}, follow=True)
    assert r.status_code == 200
    assert trading_state_effective(account=_account("acct_s")).state == "reducing"


@pytest.mark.django_db(transaction=True)
def test_a_state_change_raises_an_alert_and_active_resolves_it(alerting, receiver):  # noqa: F811
    scheduled = alerting
    trading_state_set(account=None, state="halted", reason="exchange outage", actor_type="admin", actor_id="ops")
    [message] = receiver.wait(1)
    assert message["title"] == "[Opitios] Trading halted on global" and "exchange outage" in message["message"]
    trading_state_set(account=None, state="active", reason="resumed", actor_type="admin", actor_id="ops")
    from opitios import alerts

    assert alerts.resolve_after_hold(*scheduled[-1])
    assert [m["title"] for m in receiver.wait(2)][1] == "[Opitios] resolved: Trading halted on global"


def test_risk_config_keys_have_defaults_and_invalid_values_never_stop_the_start():
    cfg = parse_config({}, source=None, demo=True)
    assert cfg.trading.price_collar_pct is None and cfg.trading.restricted_symbols == ()
    assert cfg.trading.max_open_orders is None and cfg.trading.max_orders_per_second == 50
    raw = yaml.safe_load("""
trading: {price_collar_pct: -1, restricted_symbols: "AAPL", max_open_orders: 100000, max_orders_per_second: 0}
accounts:
  a1: {api_key: K1, secret_key: S1, price_collar_pct: 2.5, max_open_orders: 0, max_orders_per_second: 5}
""")
    cfg = parse_config(raw, source=None, demo=False)
    assert cfg.trading.price_collar_pct is None and cfg.trading.max_open_orders is None and cfg.trading.max_orders_per_second == 50
    assert cfg.trading.restricted_symbols == ()
    errors = "\n".join(cfg.config_errors)
    for key in ("trading.price_collar_pct", "trading.restricted_symbols", "trading.max_open_orders", "trading.max_orders_per_second",
                "accounts.a1.max_open_orders"):
        assert key in errors
    a1 = cfg.accounts["a1"]
    assert str(a1.price_collar_pct) == "2.5" and a1.max_orders_per_second == 5 and a1.max_open_orders is None
    cfg = parse_config({"trading": {"restricted_symbols": ["gme", "AMC"]}}, source=None, demo=True)
    assert cfg.trading.restricted_symbols == ("GME", "AMC")
