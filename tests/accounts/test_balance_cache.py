"""The newest balance snapshot, cached by its writers (accounts/balance_cache.py). Real path: the refresh
task reads the account from alpacasim through alpaca-py; the cache is the configured Redis. With the
embedded cache nothing is cached (the reader always answers None: the database is asked)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction
from django.utils import timezone

from accounts import balance_cache
from accounts.models import BalanceSnapshot
from accounts.tasks import refresh_balance, refresh_balances
from tests.accounts.factories import demo_account, demo_accounts
from trading.selectors import balance_snapshot_newest

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not isinstance(caches["default"], RedisCache), reason="the snapshot cache is Redis only"),
]


def test_the_refresh_writes_the_snapshot_the_check_reads_without_a_query(alpaca, django_assert_num_queries):
    account = demo_account("account_003")
    refresh_balance.run(account.pk)
    stored = BalanceSnapshot.objects.get(account=account)
    with django_assert_num_queries(0):
        newest = balance_snapshot_newest(account=account, since=timezone.now() - timedelta(seconds=60))
    assert (newest.cash, newest.fetched_at) == (Decimal("4200.00"), stored.fetched_at)


def test_the_beat_refresh_caches_every_account(alpaca):
    accounts = demo_accounts()
    assert refresh_balances.run()["refreshed"] == 4
    since = timezone.now() - timedelta(seconds=60)
    for account in accounts:
        cached = balance_cache.snapshot_newest(account_pk=account.pk, since=since)
        assert cached is not None and cached.cash == BalanceSnapshot.objects.get(account=account).cash


def test_an_older_entry_is_not_served_and_the_database_answers(alpaca):
    account = demo_account("account_001")
    refresh_balance.run(account.pk)
    later = timezone.now() + timedelta(seconds=1)
    assert balance_cache.snapshot_newest(account_pk=account.pk, since=later) is None
    assert balance_snapshot_newest(account=account, since=later) is None  # nor by the database: the stale rules apply


def test_an_older_snapshot_never_replaces_a_newer_one(alpaca):
    account = demo_account("account_001")
    now = timezone.now()
    newer = BalanceSnapshot.objects.create(account=account, cash=Decimal("10"), buying_power=0, equity=0, fetched_at=now)
    older = BalanceSnapshot.objects.create(account=account, cash=Decimal("20"), buying_power=0, equity=0,
                                           fetched_at=now - timedelta(seconds=5))
    balance_cache.snapshots_remember([newer])
    balance_cache.snapshots_remember([older])
    cached = balance_cache.snapshot_newest(account_pk=account.pk, since=now - timedelta(seconds=60))
    assert (cached.cash, cached.fetched_at) == (Decimal("10"), now)


def test_a_rolled_back_snapshot_is_not_cached(alpaca):
    account = demo_account("account_001")
    with pytest.raises(RuntimeError), transaction.atomic():
        snap = BalanceSnapshot.objects.create(account=account, cash=Decimal("1"), buying_power=0, equity=0, fetched_at=timezone.now())
        balance_cache.snapshots_remember([snap])
        raise RuntimeError("rolled back")
    assert balance_cache.snapshot_newest(account_pk=account.pk, since=timezone.now() - timedelta(seconds=60)) is None


def _raw(account) -> bytes | None:
    return caches["default"]._cache.get_client(None).get(balance_cache.raw_key(account.pk))


def test_a_prefetched_entry_is_used_once_for_its_account_without_a_read(alpaca, monkeypatch):
    account, other = demo_account("account_001"), demo_account("account_002")
    refresh_balance.run(account.pk)
    cash = BalanceSnapshot.objects.get(account=account).cash
    since = timezone.now() - timedelta(seconds=60)
    balance_cache.prefetched(account.pk, _raw(account))
    monkeypatch.setattr(caches["default"], "get", lambda *a, **k: pytest.fail("read although prefetched"))
    assert balance_cache.snapshot_newest(account_pk=account.pk, since=since).cash == cash
    monkeypatch.undo()
    balance_cache.prefetched(account.pk, _raw(account))
    assert balance_cache.snapshot_newest(account_pk=other.pk, since=since) is None  # another account's: not used, and gone
    assert balance_cache._prefetched.get() is None


def test_a_prefetched_entry_too_old_absent_or_late_sends_the_reader_to_redis(alpaca, monkeypatch):
    account = demo_account("account_001")
    refresh_balance.run(account.pk)
    cash = BalanceSnapshot.objects.get(account=account).cash
    since = timezone.now() - timedelta(seconds=60)
    old = BalanceSnapshot(account=account, cash=Decimal("1"), fetched_at=since - timedelta(seconds=1))
    stale = caches["default"]._cache._serializer.dumps(("1", (old.fetched_at - balance_cache.EPOCH) // balance_cache.US))
    for raw in (stale, None):
        balance_cache.prefetched(account.pk, raw)
        assert balance_cache.snapshot_newest(account_pk=account.pk, since=since).cash == cash
    balance_cache.prefetched(account.pk, stale)
    clock = balance_cache.time.monotonic() + balance_cache.PREFETCH_SECONDS + 1
    monkeypatch.setattr(balance_cache.time, "monotonic", lambda: clock)  # read too long ago: another request's
    assert balance_cache.snapshot_newest(account_pk=account.pk, since=since).cash == cash
