"""The market-data hub's state as metrics (docs/deployment.md, "Metrics"), read at scrape time from the status
the leader publishes every second (``streaming.status``), so the web processes export it and the hub needs no
port of its own. Labels: ``feed`` is ``<kind>:<feed>`` from ``market_data`` in secrets.yml, two values at most."""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from opitios import metrics
from streaming import status


def hub_collector():
    try:
        summary = status.summary(status.read())
    except Exception:  # the cache is down: the hub's state is unknown (health says so); export nothing
        return
    up = GaugeMetricFamily("opitios_stream_hub_up", "1 when a hub leader published its status within the last 5 s.")
    up.add_metric([], int(summary["hub"] == "up"))
    yield up
    connected = GaugeMetricFamily("opitios_stream_connected", "1 when the hub's upstream feed is connected.", labels=["feed"])
    age = GaugeMetricFamily("opitios_stream_last_message_age_seconds", "Seconds since the feed's last message (its lag).",
                            labels=["feed"])
    reconnects = GaugeMetricFamily("opitios_stream_reconnects_last_hour", "Feed reconnects in the last hour.", labels=["feed"])
    gaps = CounterMetricFamily("opitios_stream_gaps", "Feed gaps (stalls or drops) since the leader started.", labels=["feed"])
    subscribed = GaugeMetricFamily("opitios_stream_subscribed_symbols", "Symbols subscribed upstream.", labels=["feed"])
    for name, feed in summary["feeds"].items():
        connected.add_metric([name], int(feed["connected"]))
        if feed["last_message_age_ms"] is not None:
            age.add_metric([name], feed["last_message_age_ms"] / 1000)
        reconnects.add_metric([name], feed["reconnects_last_hour"])
        gaps.add_metric([name], feed["gaps"])
        subscribed.add_metric([name], feed["subscribed_symbols"])
    yield from (connected, age, reconnects, gaps, subscribed)


def connect() -> None:
    metrics.register_collector(hub_collector)
