"""The "balance unverified" alert (trading/metrics.py): an order that went ahead without a fresh balance tells
a human once, the account's next order with a verified balance resolves it; to a webhook receiver the test
starts (Apprise json://), with the broker faked at its seam."""
from __future__ import annotations

import pytest
from django.core.cache import cache

from accounts.broker import BrokerTimeout
from opitios import alerts

from .test_order_flow import ORDER, post

pytestmark = pytest.mark.django_db(transaction=True)  # alerts leave after the commit, as in production


def test_an_unverified_balance_alerts_once_and_a_verified_order_resolves_it(trader, world, config_file, receiver, alert_holds):
    config_file.set("alerts", urls=[receiver.url])
    holds = alert_holds
    cache.clear()
    for n in range(2):  # fail-open: both go ahead unverified; the second sends nothing new
        world.faults["get_account"] = BrokerTimeout("timeout")
        r = post(trader, {**ORDER, "client_order_id": f"unverified-{n}"})
        assert r.status_code == 201 and r.json()["checks"]["balance"]["status"] == "unverified", r.json()
    assert holds == []  # an accepted order that is itself unverified resolves nothing
    r = post(trader, {**ORDER, "client_order_id": "verified"})
    assert r.status_code == 201 and r.json()["checks"]["balance"]["status"] == "passed"
    assert len(holds) == 1 and alerts.resolve_after_hold(*holds[0])
    messages = receiver.wait(2)
    assert [m["title"] for m in messages] == ["[Opitios] balance unverified for account account_001",
                                              "[Opitios] resolved: balance unverified for account account_001"]
    cache.clear()
