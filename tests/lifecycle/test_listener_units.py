"""The listener's own rules, without streams: backoff with jitter, shard membership, and the shard lease."""
from __future__ import annotations

import pytest
from django.core.cache import cache

from lifecycle.listener import BACKOFF_CAP, Listener, backoff_delay
from tests.accounts.factories import AlpacaAccountFactory

pytestmark = pytest.mark.django_db


def test_backoff_grows_is_capped_and_jittered():
    for attempt in range(12):
        delays = [backoff_delay(attempt) for _ in range(200)]
        assert all(0 <= d <= min(BACKOFF_CAP, 0.5 * 2 ** attempt) for d in delays)
        assert len(set(delays)) > 150  # jittered, not in step
    assert max(backoff_delay(40) for _ in range(200)) <= BACKOFF_CAP


def test_each_enabled_account_belongs_to_exactly_one_shard():
    accounts = [AlpacaAccountFactory() for _ in range(7)]
    AlpacaAccountFactory(enabled=False)
    shards = [set(Listener(shard_index=i, shard_count=3)._mine().values_list("pk", flat=True)) for i in range(3)]
    assert set().union(*shards) == {a.pk for a in accounts}
    assert sum(len(s) for s in shards) == 7
    with pytest.raises(ValueError):
        Listener(shard_index=3, shard_count=3)


def test_one_node_holds_a_shard_lease_until_it_releases(settings):
    settings.REDIS_URL = "redis://configured"  # the lease applies only when several nodes can run
    cache.delete("lifecycle:lease:0")
    first, second = Listener(shard_index=0), Listener(shard_index=0)
    second.node = f"{first.node}-other"
    assert first._lease() and first._lease()  # renewed
    assert not second._lease()
    first._release()
    assert second._lease() and not first._lease()
    second._release()
