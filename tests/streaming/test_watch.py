"""The hub's "stream down" alert (streaming/watch.py): the check a worker runs on what the hub leader
publishes, raised past ``alerts.stream_down_seconds`` and resolved once, to a webhook receiver the test
starts (Apprise json://). The task runs eagerly; the resolve hold is run by hand (tests/opitios/test_alerts.py)."""
from __future__ import annotations

import time

import pytest
import yaml
from django.conf import settings
from django.core.cache import cache

from opitios import alerts
from opitios.config import parse_config
from streaming import status, tasks
from tests.accounts.factories import AlpacaAccountFactory
from tests.opitios.test_alerts import alerting  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)  # alerts leave after the commit, as in production

THRESHOLD = 30
FEEDS = ("stock:iex", "option:indicative")


@pytest.fixture
def watching(alerting, receiver, tmp_path):  # noqa: F811
    path = tmp_path / "secrets.yml"
    path.write_text(yaml.safe_dump({"alerts": {"urls": [receiver.url], "stream_down_seconds": THRESHOLD}}))
    cache.delete(status.STATUS_KEY)
    yield alerting
    cache.delete(status.STATUS_KEY)


def publish(**feeds: dict) -> None:
    status.publish({"leader": "node:1", "feeds": {name: {"connected": True, "down_since": None, **feeds.get(name.split(":")[0], {})}
                                                  for name in FEEDS}})


def check() -> dict[str, str]:
    return tasks.watch.apply().get()  # by Celery, as beat sends it


def test_a_dead_hub_alerts_once_past_the_threshold_and_resolves_once(watching, receiver):  # noqa: F811
    holds = watching
    AlpacaAccountFactory(paper_trading=True)
    assert check() == {"hub": "down"}  # no status at all: down since this first look
    assert cache.get(alerts.SINCE_PREFIX + "stream_down:hub") is not None and not alerts.alert_active("stream_down:hub")
    cache.set(alerts.SINCE_PREFIX + "stream_down:hub", time.time() - THRESHOLD - 1)  # that look was a threshold ago
    assert check() == {"hub": "down"}
    assert check() == {"hub": "down"}  # still down: nothing new
    assert alerts.alert_active("stream_down:hub")

    publish()
    assert check() == {"hub": "up", "stock:iex": "up", "option:indicative": "up"}
    assert check()["hub"] == "up"  # one resolve, not one per check
    assert len(holds) == 1 and alerts.resolve_after_hold(*holds[0])
    messages = receiver.wait(2)
    assert [m["title"] for m in messages] == ["[Opitios] market-data stream down: hub", "[Opitios] resolved: market-data stream down: hub"]
    assert "run_hub" in messages[0]["message"] and f"Down for {THRESHOLD + 1} s" in messages[0]["message"]
    assert cache.get(alerts.SINCE_PREFIX + "stream_down:hub") is None


def test_a_hub_that_stopped_publishing_is_down_since_its_last_status(watching, receiver):  # noqa: F811
    AlpacaAccountFactory(paper_trading=True)
    status.lastvalue.put(status.STATUS_KEY, {"leader": "node:1", "updated_at": time.time() - THRESHOLD - 5, "feeds": {}})
    assert check() == {"hub": "down"}
    assert [m["title"] for m in receiver.wait(1)] == ["[Opitios] market-data stream down: hub"]


def test_a_feed_counts_from_when_it_dropped_and_only_that_feed_alerts(watching, receiver):  # noqa: F811
    holds = watching
    AlpacaAccountFactory(paper_trading=True)
    publish(option={"connected": False, "down_since": time.time() - 5})
    assert check() == {"hub": "up", "stock:iex": "up", "option:indicative": "down"}
    assert not alerts.alert_active("stream_down:option:indicative")  # 5 s < the threshold
    publish(option={"connected": False, "down_since": time.time() - THRESHOLD - 2})
    check()
    publish(option={"connected": True, "down_since": None})
    check()
    assert alerts.resolve_after_hold(*holds[-1])
    titles = [m["title"] for m in receiver.wait(2)]
    assert titles == ["[Opitios] market-data stream down: option:indicative", "[Opitios] resolved: market-data stream down: option:indicative"]


def test_reconnects_within_the_threshold_never_alert(watching, receiver):  # noqa: F811
    """Outside market hours a subscribed feed stalls and reconnects every stall_seconds: each drop counts anew."""
    AlpacaAccountFactory(paper_trading=True)
    for _ in range(3):
        # an earlier drop whose end no check saw: the feed's own "down since" wins over that memory
        cache.set(alerts.SINCE_PREFIX + "stream_down:stock:iex", time.time() - 10 * THRESHOLD)
        publish(stock={"connected": False, "down_since": time.time() - 2})
        assert check()["stock:iex"] == "down"
        publish()
        assert check()["stock:iex"] == "up"
    assert not alerts.alert_active("stream_down:stock:iex") and receiver.delivered() == []


def test_a_feed_the_hub_never_started_is_down_when_the_configured_stream_account_is_missing(watching, receiver, tmp_path):  # noqa: F811
    path = tmp_path / "secrets.yml"
    config = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**config, "market_data": {"stream_account": "acct_gone"}}))
    status.publish({"leader": "node:1", "account_id": None, "feeds": {}})
    for name in FEEDS:
        cache.set(alerts.SINCE_PREFIX + f"stream_down:{name}", time.time() - THRESHOLD - 1)
    assert check() == {"hub": "up", "stock:iex": "down", "option:indicative": "down"}
    messages = receiver.wait(2)
    assert sorted(m["title"] for m in messages) == [f"[Opitios] market-data stream down: {name}" for name in sorted(FEEDS)]
    assert "no enabled account to stream with" in messages[0]["message"]


def test_nothing_is_expected_without_an_account_to_stream_with(watching, receiver):  # noqa: F811
    holds = watching
    assert check() == {"hub": "not expected", "stock:iex": "not expected", "option:indicative": "not expected"}
    AlpacaAccountFactory(paper_trading=False)  # a live account is never the hub's
    assert check()["hub"] == "not expected"
    assert cache.get(alerts.SINCE_PREFIX + "stream_down:hub") is None

    account = AlpacaAccountFactory(paper_trading=True)
    cache.set(alerts.SINCE_PREFIX + "stream_down:hub", time.time() - THRESHOLD - 1)
    assert check()["hub"] == "down" and alerts.alert_active("stream_down:hub")
    account.enabled = False
    account.save(update_fields=["enabled"])
    assert check()["hub"] == "not expected"  # the raised alert resolves: there is nothing left to stream with
    assert len(holds) == 1 and alerts.resolve_after_hold(*holds[0])
    assert [m["title"] for m in receiver.wait(2)][-1] == "[Opitios] resolved: market-data stream down: hub"


def test_a_cache_outage_skips_the_check(watching, receiver, monkeypatch):  # noqa: F811
    AlpacaAccountFactory(paper_trading=True)

    def down(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(status, "read", down)
    assert check() == {"hub": "unknown", "stock:iex": "unknown", "option:indicative": "unknown"}


def test_the_threshold_is_validated_and_never_stops_the_start():
    config = parse_config({"alerts": {"stream_down_seconds": 5}}, source=None, demo=True)
    assert config.alerts.stream_down_seconds == 60
    assert [e.split(":")[0] for e in config.config_errors] == ["alerts.stream_down_seconds"]
    assert parse_config({"alerts": {"stream_down_seconds": 120}}, source=None, demo=True).alerts.stream_down_seconds == 120


def test_beat_runs_both_stream_checks():
    for task in ("streaming.watch", "lifecycle.watch"):
        entry = settings.CELERY_BEAT_SCHEDULE[task]
        assert entry["task"] == task and entry["schedule"] == entry["options"]["expires"] == settings.STREAM_WATCH_SECONDS
