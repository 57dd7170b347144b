"""The trade-updates listener's "stream down" alert (lifecycle/watch.py): the check a worker runs on what each
shard's owner publishes, raised past ``alerts.stream_down_seconds`` and resolved once, to a webhook receiver
the test starts (Apprise json://). The task runs eagerly; the resolve hold is run by hand."""
from __future__ import annotations

import asyncio
import time

import pytest
from django.core.cache import cache

from lifecycle import tasks
from lifecycle.listener import Listener, StreamState, shard_key
from opitios import alerts
from tests.accounts.factories import AlpacaAccountFactory
from tests.audit.conftest import requires_postgres
from tests.helpers.sim_streams import wait_for
from tests.trading.conftest import config_file  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)  # alerts leave after the commit, as in production

THRESHOLD = 10  # the least alerts.stream_down_seconds allows


@pytest.fixture
def watching(config_file, receiver, alert_holds, settings):  # noqa: F811
    config_file.set("alerts", urls=[receiver.url], stream_down_seconds=THRESHOLD)
    cache.clear()
    yield alert_holds
    cache.clear()


def check() -> dict[int, str]:
    return tasks.watch.apply().get()  # by Celery, as beat sends it


def report(listener: Listener, connected: int, down_for: float = 0.0) -> None:
    """What the shard's owner publishes every poll, with ``connected`` of its streams up."""
    listener.holds_lease = True
    now = time.time()
    for i, target in enumerate(listener._targets().values()):
        state = listener.streams[target.pk] = StreamState(target)
        up = i < connected
        state.connected, state.connected_at, state.down_since = up, now - 60, None if up else now - down_for
    asyncio.run(listener._publish())


def test_a_shard_nobody_owns_alerts_once_past_the_threshold_and_resolves_once(watching, receiver):
    holds = watching
    AlpacaAccountFactory()
    assert check() == {0: "down"}  # no report at all: down since this first look
    assert not alerts.alert_active("stream_down:trade_updates:0")
    cache.set(alerts.SINCE_PREFIX + "stream_down:trade_updates:0", time.time() - THRESHOLD - 1)
    assert check() == {0: "down"}
    assert check() == {0: "down"}  # still down: nothing new

    report(Listener(), connected=1)
    assert check() == {0: "up"}
    assert check() == {0: "up"}  # one resolve, not one per check
    assert len(holds) == 1 and alerts.resolve_after_hold(*holds[0])
    messages = receiver.wait(2)
    assert [m["title"] for m in messages] == ["[Opitios] trade-updates stream down: shard 0/1",
                                              "[Opitios] resolved: trade-updates stream down: shard 0/1"]
    assert "listen_trade_updates" in messages[0]["message"] and "(1 accounts)" in messages[0]["message"]


def test_each_shard_counts_its_own_accounts_and_streams(watching, receiver, settings):
    settings.LIFECYCLE_SHARD_COUNT = 3
    accounts = [AlpacaAccountFactory() for _ in range(6)]
    for account in accounts:  # nothing left in shard 2: never down
        if account.pk % 3 == 2:
            account.enabled = False
            account.save(update_fields=["enabled"])
    AlpacaAccountFactory.create_batch(3, config_error="api_key: required")  # not streamed wherever they fall
    owners = [Listener(shard_index=i, shard_count=3) for i in range(3)]
    report(owners[0], connected=0, down_for=THRESHOLD + 5)
    report(owners[1], connected=2)
    assert check() == {0: "down", 1: "up", 2: "not expected"}
    [message] = receiver.wait(1)
    assert message["title"] == "[Opitios] trade-updates stream down: shard 0/3"
    assert "2 of 2 trade streams of shard 0/3 are disconnected" in message["message"]


def test_a_stream_down_for_less_than_the_threshold_is_not_raised(watching, receiver):
    AlpacaAccountFactory.create_batch(2)
    report(Listener(), connected=1, down_for=THRESHOLD - 5)
    assert check() == {0: "down"}
    assert not alerts.alert_active("stream_down:trade_updates:0") and receiver.delivered() == []


def test_no_account_no_alert(watching, receiver):
    AlpacaAccountFactory(enabled=False)
    assert check() == {0: "not expected"}
    assert cache.get(alerts.SINCE_PREFIX + "stream_down:trade_updates:0") is None


def test_a_standby_publishes_nothing_and_never_clears_the_owners_report():
    AlpacaAccountFactory()
    owner = Listener()
    report(owner, connected=1)
    standby = Listener()
    standby.node = f"{owner.node}-standby"
    asyncio.run(standby._publish())  # holds_lease is False
    assert cache.get(shard_key(0))["node"] == owner.node
    standby.stop()
    asyncio.run(standby.run())  # a standby that stops leaves the owner's report alone
    assert cache.get(shard_key(0))["node"] == owner.node


def test_the_owner_reports_its_longest_disconnected_stream():
    accounts = AlpacaAccountFactory.create_batch(3)
    listener = Listener()
    now = time.time()
    for account, since in zip(accounts, (None, now - 30, now - 90), strict=True):
        target = listener._targets()[account.pk]
        state = listener.streams[account.pk] = StreamState(target)
        state.connected, state.connected_at, state.down_since = since is None, now, since
    snapshot = listener.snapshot()
    assert (snapshot["expected"], snapshot["connected"], snapshot["down_since"]) == (3, 1, now - 90)
    assert StreamState(target).down_since >= now  # a stream not yet connected is down from its start


@requires_postgres
def test_a_real_listener_whose_streams_are_refused_alerts_then_resolves(watching, receiver, listening, sim_urls):
    holds = watching
    assert check() == {0: "up"}
    sim_urls.control("POST", "/_sim/streams/faults", {"action": "refuse", "feed": "paper/stream", "status": 503})
    sim_urls.control("POST", "/_sim/streams/faults", {"action": "drop", "feed": "paper/stream"})
    wait_for(lambda: check() and alerts.alert_active("stream_down:trade_updates:0"), timeout=THRESHOLD + 30,
             what="the refused streams to count as down past the threshold")
    sim_urls.control("POST", "/_sim/streams/faults/clear", {})
    listening.wait_connected(2, timeout=60)
    assert check() == {0: "up"}
    assert len(holds) == 1 and alerts.resolve_after_hold(*holds[0])
    messages = receiver.wait(2)
    assert [m["title"] for m in messages] == ["[Opitios] trade-updates stream down: shard 0/1",
                                              "[Opitios] resolved: trade-updates stream down: shard 0/1"]
    assert "of 2 trade streams of shard 0/1 are disconnected" in messages[0]["message"]
