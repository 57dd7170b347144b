"""Desk fixtures: users of each group (session login), order records and snapshots as the services write them."""
from __future__ import annotations

import importlib
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import BalanceSnapshot
from tests.audit.factories import ensure_compliance_group
from trading.models import OrderRecord

PASSWORD = "Desk-test-Pa55!"


def ensure_desk_group():
    """The migration's group (a transactional test's flush empties it)."""
    importlib.import_module("desk.migrations.0001_desk_group").create_group(apps, None)


def user_in(group: str | None, username: str, *, superuser: bool = False):
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True, is_superuser=superuser)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def session(user) -> Client:
    client = Client()
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


@pytest.fixture(autouse=True)
def _fresh_latency_figures():
    """The latency monitor keeps its figures CACHE_SECONDS: each test computes its own."""
    from desk.latency import forget_cached

    forget_cached()
    yield
    forget_cached()


@pytest.fixture
def desk_client(db):
    ensure_desk_group()
    return session(user_in("Desk", "trader-desk"))


@pytest.fixture
def officer_client(db):
    ensure_compliance_group()
    return session(user_in("Compliance officers", "officer"))


def snapshot(account, *, equity, cash=None, at: datetime) -> BalanceSnapshot:
    return BalanceSnapshot.objects.create(account=account, cash=Decimal(cash if cash is not None else equity), buying_power=Decimal(equity),
                                          equity=Decimal(equity), fetched_at=at)


def record(account, *, n: int, received_at: datetime, **fields) -> OrderRecord:
    defaults = {"account_type": account.account_type, "source": "api", "client_order_id": f"rec-{account.pk}-{n}", "symbol": "AAPL",
                "asset_class": "us_equity", "side": "buy", "order_type": "market", "time_in_force": "day", "qty": Decimal(1),
                "outcome": "accepted", "broker_status": "filled", "received_at": received_at}
    return OrderRecord.objects.create(account=account, **{**defaults, **fields})


T0 = datetime(2026, 11, 23, 15, 0, 0, 123000, tzinfo=UTC)
