"""The hub's status on /metrics (streaming/metrics.py): up or down, and per feed its connection, lag and
reconnects, read from the status the leader publishes."""
from __future__ import annotations

import time

import pytest

from opitios import lastvalue
from streaming import status
from tests.trading.test_metrics import scrape, value

pytestmark = pytest.mark.django_db


def test_hub_down_then_publishing():
    now = time.time()
    # the last status of a hub that died a minute ago: down, and no feed series
    lastvalue.put(status.STATUS_KEY, {"leader": "node:0", "updated_at": now - 60, "feeds": {"stock:iex": {"connected": True}}})
    samples = scrape()
    assert value(samples, "opitios_stream_hub_up") == 0
    assert not any(name == "opitios_stream_connected" for name, _ in samples)

    status.publish({"leader": "node:1", "feeds": {
        "stock:iex": {"connected": True, "subscribed": 3, "last_message_at": now - 2.0, "reconnects_last_hour": 4, "gaps": 1},
        "option:indicative": {"connected": False, "subscribed": 0, "last_message_at": None, "reconnects_last_hour": 0, "gaps": 0},
    }})
    samples = scrape()
    assert value(samples, "opitios_stream_hub_up") == 1
    assert value(samples, "opitios_stream_connected", feed="stock:iex") == 1
    assert value(samples, "opitios_stream_connected", feed="option:indicative") == 0
    assert 2.0 <= value(samples, "opitios_stream_last_message_age_seconds", feed="stock:iex") < 30
    assert ("opitios_stream_last_message_age_seconds", (("feed", "option:indicative"),)) not in samples
    assert value(samples, "opitios_stream_reconnects_last_hour", feed="stock:iex") == 4
    assert value(samples, "opitios_stream_gaps_total", feed="stock:iex") == 1
    assert value(samples, "opitios_stream_subscribed_symbols", feed="stock:iex") == 3
