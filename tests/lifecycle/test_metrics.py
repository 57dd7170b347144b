"""The listener's figures on /metrics: summed over shards, no per-account series (lifecycle/metrics.py)."""
from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from lifecycle.listener import Listener, StreamState, shard_key
from tests.accounts.factories import AlpacaAccountFactory
from tests.audit.conftest import requires_postgres
from tests.trading.test_metrics import scrape, value

pytestmark = pytest.mark.django_db


def test_a_missing_shard_and_its_published_figures(settings):
    settings.LIFECYCLE_SHARD_COUNT = 2
    cache.delete_many([shard_key(0), shard_key(1)])
    samples = scrape()
    assert value(samples, "opitios_trade_updates_shards", state="configured") == 2
    assert value(samples, "opitios_trade_updates_shards", state="reporting") == 0
    assert value(samples, "opitios_trade_updates_accounts", state="expected") == 0

    # shard 1 publishes what its listener holds: its streams, all but one connected, quiet for 40 s
    for _ in range(6):
        AlpacaAccountFactory()
    listener = Listener(shard_index=1, shard_count=2)
    targets = list(listener._targets().values())
    n = len(targets)
    assert n == 3
    now = time.time()
    for i, target in enumerate(targets):
        state = listener.streams[target.pk] = StreamState(target)
        state.connected, state.connected_at = i < 2, now - 40
        state.reconnects, state.events = i, 5
    cache.set(shard_key(1), listener.snapshot(), 30)
    samples = scrape()
    assert value(samples, "opitios_trade_updates_shards", state="reporting") == 1
    assert value(samples, "opitios_trade_updates_accounts", state="expected") == 3
    assert value(samples, "opitios_trade_updates_accounts", state="connected") == 2
    assert value(samples, "opitios_trade_updates_reconnects_total") == 3
    assert value(samples, "opitios_trade_updates_events_total") == 15
    assert 39 <= value(samples, "opitios_trade_updates_oldest_event_age_seconds") <= 60
    assert not any("account" in dict(labels) for name, labels in samples if name.startswith("opitios_trade_updates"))
    cache.delete(shard_key(1))


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_running_listener_reports_its_streams_connected(listening):
    listening.wait_connected(2)
    samples = scrape()
    assert value(samples, "opitios_trade_updates_accounts", state="expected") == 2
    assert value(samples, "opitios_trade_updates_accounts", state="connected") == 2
    assert value(samples, "opitios_trade_updates_shards", state="reporting") == 1
    assert ("opitios_trade_updates_reconnects_total", ()) in samples
