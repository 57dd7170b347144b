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


def test_the_writer_commits_what_waits_as_one_batch_and_reports_failures_to_every_stream():
    import asyncio

    from lifecycle.listener import LedgerWriter

    async def scenario(fail: bool):
        calls = []

        async def sync(fn, groups):  # stands in for the thread hop to handling.updates_handle
            calls.append([(account, list(updates)) for account, updates in groups])
            await asyncio.sleep(0.01)
            if fail:
                raise ConnectionError("database away")
            return [ValueError("bad event") if account == "b" else None for account, _ in groups]

        writer = LedgerWriter(sync)
        task = asyncio.create_task(writer.run())
        results = await asyncio.gather(writer.write("a", [1]), writer.write("a2", [2, 3]), writer.write("b", [4]),
                                       return_exceptions=True)
        task.cancel()
        return calls, results

    calls, results = asyncio.run(scenario(fail=False))
    assert calls == [[("a", [1]), ("a2", [2, 3]), ("b", [4])]]  # everything waiting: one batch
    assert results[:2] == [None, None] and isinstance(results[2], ValueError)  # only the bad account fails
    _, results = asyncio.run(scenario(fail=True))
    assert all(isinstance(r, ConnectionError) for r in results)  # every stream of the batch reconnects
