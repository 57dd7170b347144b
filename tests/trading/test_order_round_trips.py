"""One round trip to the shared store per order, for the throttle, the account cache's version, the
account's upstream budget and (Redis) its newest balance snapshot together. Real path: APIClient -> DRF -> order service -> alpaca-py ->
alpacasim; a spy counts the store calls of the request's thread (the statistics flusher has its own)."""
from __future__ import annotations

import threading

import pytest
from django.conf import settings
from redis.connection import AbstractConnection

from accounts import budget
from accounts.models import AlpacaAccount
from accounts.services import account_refresh_balance
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from trading.models import OrderRecord

from .test_api_sim import ORDER, live, trader  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def round_trips(monkeypatch):
    calls = []
    real = budget.counters._incr
    me = threading.get_ident()

    def spy(deltas, **kwargs):
        if threading.get_ident() == me:
            calls.append(sorted(deltas))
        return real(deltas, **kwargs)

    monkeypatch.setattr(budget.counters, "_incr", spy)
    return calls


def test_an_order_costs_one_round_trip(live, round_trips):  # noqa: F811
    account_refresh_balance(account=AlpacaAccount.objects.get(account_id="account_001"))  # a fresh snapshot: no live check
    assert trader().post("/api/v1/stocks/order", ORDER, format="json").status_code == 201  # the account is now known
    round_trips.clear()
    r = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": "one-trip"}, format="json")
    assert r.status_code == 201, r.json()
    assert len(round_trips) == 1, round_trips
    assert any(k.startswith("throttle:") for k in round_trips[0]) and any(":req:" in k for k in round_trips[0])
    assert OrderRecord.objects.get(client_order_id="one-trip").outcome == "accepted"


def test_a_replay_gives_the_prepaid_budget_back(live, round_trips):  # noqa: F811
    body = {**ORDER, "client_order_id": "replayed"}
    assert trader().post("/api/v1/stocks/order", body, format="json").status_code == 201
    acct = AlpacaAccount.objects.get(account_id="account_001")
    before = budget.stats_for({acct.pk: acct.rate_limit_per_minute})[acct.pk].requests_last_minute
    r = trader().post("/api/v1/stocks/order", body, format="json")
    assert r.status_code in (200, 201) and r.json()["replayed"] is True
    after = budget.stats_for({acct.pk: acct.rate_limit_per_minute})[acct.pk].requests_last_minute
    assert after == before, "a replay makes no broker call, so it must not use the account's budget"


@pytest.mark.skipif(not settings.REDIS_URL, reason="the snapshot cache is Redis only")
def test_the_balance_snapshot_is_read_in_the_throttles_round_trip(live, monkeypatch):  # noqa: F811
    sent: list[bytes] = []
    real, me = AbstractConnection.send_packed_command, threading.get_ident()

    def spy(self, command, check_health=True):
        if threading.get_ident() == me:
            sent.append(b"".join(command) if isinstance(command, list | tuple) else command)
        return real(self, command, check_health)

    account_refresh_balance(account=AlpacaAccount.objects.get(account_id="account_001"))  # a fresh snapshot: no live check
    assert trader().post("/api/v1/stocks/order", ORDER, format="json").status_code == 201  # the account is now known
    monkeypatch.setattr(AbstractConnection, "send_packed_command", spy)
    r = trader().post("/api/v1/stocks/order", {**ORDER, "client_order_id": "snapshot-along"}, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["checks"]["balance"]["source"] == "snapshot"
    assert len(sent) == 1 and b"EVALSHA" in sent[0].upper() and b"balsnap" in sent[0], sent
