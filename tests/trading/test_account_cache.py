"""The account row is reused between requests of one process, and an admin edit or a sync applies
to the very next request (accounts/account_cache.py). Real path: APIClient -> DRF -> order service
-> alpaca-py -> alpacasim. Transactional tests: rows read inside a test's transaction are never kept."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AlpacaAccount
from accounts.services import account_sync, account_update
from opitios.config import current_config
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

from .test_api_sim import ORDER, live, trader  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)


def _order():
    return trader().post("/api/v1/stocks/order", ORDER, format="json")


def _account_lookups(queries) -> int:
    return sum('"account_id" = ' in q["sql"] and "alpacaaccount" in q["sql"].lower() for q in queries)


def test_the_row_is_reused_by_the_next_request(live):  # noqa: F811
    assert _order().status_code == 201
    with CaptureQueriesContext(connection) as queries:
        r = _order()
    assert r.status_code == 201, r.json()
    assert _account_lookups(queries.captured_queries) == 0


def test_an_admin_edit_applies_to_the_next_request(live):  # noqa: F811
    assert _order().status_code == 201  # the row is now cached
    account = AlpacaAccount.objects.get(account_id="account_001")
    account_update(account=account, changes={"enabled": False}, actor_id="admin-1")
    r = _order()
    assert r.status_code == 422 and r.json()["error"]["code"] == "account_disabled", r.json()
    account_update(account=account, changes={"enabled": True, "minimum_balance": Decimal("1000000000")}, actor_id="admin-1")
    r = _order()
    assert r.status_code == 422 and r.json()["error"]["code"] == "insufficient_balance", r.json()


def test_a_sync_applies_to_the_next_request(live, config_file):  # noqa: F811
    assert _order().status_code == 201
    config_file.data["accounts"]["account_001"]["minimum_balance"] = 1_000_000_000
    config_file.write()
    account_sync(config=current_config(), detect=False)
    r = _order()
    assert r.status_code == 422 and r.json()["error"]["code"] == "insufficient_balance", r.json()


def test_a_failing_store_means_every_read_goes_to_the_database(live, monkeypatch):  # noqa: F811
    from accounts import budget
    from accounts.account_cache import account_by_id

    assert account_by_id("account_001") is not None  # cached while the store answers

    def down(*args, **kwargs):
        raise ConnectionError("store down")

    monkeypatch.setattr(budget.counters, "_incr_shared", down)
    monkeypatch.setattr(budget.counters, "incr", down)
    with CaptureQueriesContext(connection) as queries:
        assert account_by_id("account_001").account_id == "account_001"
        assert account_by_id("account_001").account_id == "account_001"
    assert _account_lookups(queries.captured_queries) == 2


def test_the_throttle_reads_the_version_in_its_own_round_trip(live, monkeypatch):  # noqa: F811
    from accounts import account_cache

    def no_second_read():
        raise AssertionError("the account cache read the version in a round trip of its own")

    monkeypatch.setattr(account_cache, "_version", no_second_read)
    assert _order().status_code == 201
    with CaptureQueriesContext(connection) as queries:
        assert _order().status_code == 201
    assert _account_lookups(queries.captured_queries) == 0
