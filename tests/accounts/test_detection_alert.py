"""The "paper/live detection failed" alert (accounts/metrics.py): a detection that fails against alpacasim
tells a human once, the next successful one resolves it; to a webhook receiver the test starts."""
from __future__ import annotations

import pytest
from django.core.cache import cache

from accounts.detection import account_detect_type
from opitios import alerts
from tests.accounts.factories import demo_account
from tests.opitios.test_alerts import alerting  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)  # alerts leave after the commit, as in production


def test_a_failed_detection_alerts_once_and_a_successful_one_resolves_it(alpaca, alerting, receiver):  # noqa: F811
    holds = alerting
    account = demo_account("account_004")
    alpaca.set_fault("account", status=500)
    assert account_detect_type(account=account).failed
    assert account_detect_type(account=account).failed  # still failing: nothing new
    alpaca.clear_faults()
    assert not account_detect_type(account=account).failed
    assert len(holds) == 1 and alerts.resolve_after_hold(*holds[0])
    messages = receiver.wait(2)
    assert [m["title"] for m in messages] == ["[Opitios] paper/live detection failed: account_004",
                                              "[Opitios] resolved: paper/live detection failed: account_004"]
    assert "unavailable" in messages[0]["message"].lower() and "AKDEMO" not in messages[0]["message"]
    cache.clear()
