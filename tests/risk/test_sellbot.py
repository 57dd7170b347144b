"""The sell bot obeys the trading state: nothing in halted (the hold says why in GET /sell), exits in
reducing. The check runs against alpacasim over real HTTP."""
from __future__ import annotations

import pytest

from opitios.auth import issue_token
from risk.states import trading_state_set
from sellbot import services
from sellbot.models import SellDecision
from sellbot.services import quotes
from tests.sellbot.conftest import OPTION, buy_option, config_file, sim_accounts  # noqa: F401 - fixtures
from tests.sellbot.test_views import client_for
from trading.models import OrderRecord

pytestmark = pytest.mark.django_db(transaction=True)


def check(account, monkeypatch):
    monkeypatch.setattr(quotes, "_clock_cache", None)  # the clock cache lives in sellbot/services/quotes.py on main
    return services.account_check(account_pk=account.pk, worker="test")


def test_halted_holds_the_exit_and_reducing_lets_it_through(sim, sim_accounts, monkeypatch):  # noqa: F811
    account = sim_accounts["account_001"]
    sim.set_price(OPTION, bid=1.95, ask=2.00)
    buy_option(account, qty=2)
    assert check(account, monkeypatch).counts.get("hold:hold") == 1
    trading_state_set(account=None, state="halted", reason="exchange outage", actor_type="admin", actor_id="ops")
    sim.set_price(OPTION, bid=2.40, ask=2.45)  # +20%: take profit, but trading is halted
    for _ in range(2):
        assert check(account, monkeypatch).counts.get("hold:trading_halted") == 1
    assert not SellDecision.objects.exists()
    body = client_for(issue_token(user_id="ops-admin", permissions=["admin"])).get("/api/v1/sell").json()
    assert body["holds"].get("trading_halted") == 2

    trading_state_set(account=None, state="reducing", reason="wind down", actor_type="admin", actor_id="ops")
    result = check(account, monkeypatch)
    assert result.counts.get("decisions") == 1, result.counts
    decision = SellDecision.objects.get()
    assert decision.reason == "take_profit"
    record = OrderRecord.objects.get(client_order_id=decision.client_order_id)
    assert record.source == "sellbot" and record.outcome == "accepted"
