"""A bot that sells nothing says why: holds are counted by reason (market_closed among them) in GET /sell
and in the admin. The check runs against alpacasim over real HTTP; the report is read through the API."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from opitios.auth import issue_token
from sellbot import services
from sellbot.models import SellDecision
from sellbot.services import quotes

from .conftest import OPTION, buy_option
from .test_views import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def check(account, monkeypatch):
    monkeypatch.setattr(quotes, "_clock_cache", None)  # the clock the test just set, not the process's cached one
    return services.account_check(account_pk=account.pk, worker="test")


def test_holds_are_counted_by_reason_in_the_report_and_the_admin(sim, sim_accounts, monkeypatch):
    account = sim_accounts["account_001"]
    sim.set_price(OPTION, bid=1.95, ask=2.00)
    buy_option(account, qty=2)
    first = check(account, monkeypatch)
    assert first.counts.get("fills_absorbed") == 1 and first.counts.get("hold:hold") == 1  # bid/entry 0.975: no rule

    sim.set_clock(is_open=False)
    for _ in range(2):
        assert check(account, monkeypatch).counts.get("hold:market_closed") == 1
    sim.set_clock(is_open=True)
    sim.set_price(OPTION, bid=2.05, ask=2.15)  # between stop loss and take profit: no rule applies
    assert check(account, monkeypatch).counts.get("hold:hold") == 1
    assert not SellDecision.objects.exists()

    admin = client_for(issue_token(user_id="ops-admin", permissions=["admin"]))
    body = admin.get("/api/v1/sell").json()
    assert body["holds"] == {"hold": 2, "market_closed": 2}

    get_user_model().objects.create_superuser("root", password="pw")
    browser = Client()
    browser.login(username="root", password="pw")
    page = browser.get("/admin/sellbot/sellbotstate/")
    assert page.status_code == 200, page
    assert "Holds by reason" in page.content.decode() and "hold: 2, market_closed: 2" in page.content.decode()
