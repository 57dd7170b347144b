"""The trade-updates listener's state as metrics (docs/deployment.md, "Metrics"), read at scrape time from the
figures every shard publishes each poll (``lifecycle.health``), so the web processes export them. Summed over
shards, no per-account or per-shard label: 1,000 accounts cost the same handful of series."""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from opitios import metrics

from .health import trade_updates_section


def listener_collector():
    section = trade_updates_section()
    if "error" in section:  # the cache is down: the state is unknown, export nothing rather than zeros
        return
    shards = GaugeMetricFamily("opitios_trade_updates_shards", "Listener shards configured and reporting.", labels=["state"])
    shards.add_metric(["configured"], section["shards"])
    shards.add_metric(["reporting"], section["shards_reporting"])
    accounts = GaugeMetricFamily("opitios_trade_updates_accounts", "Accounts whose trade stream is expected and connected.",
                                 labels=["state"])
    accounts.add_metric(["expected"], section["accounts_expected"])
    accounts.add_metric(["connected"], section["accounts_connected"])
    yield shards
    yield accounts
    for name, key, text in (
        ("opitios_trade_updates_reconnects", "reconnects", "Trade-stream reconnects since each shard's owner started."),
        ("opitios_trade_updates_events", "events", "Trade events recorded since each shard's owner started."),
        ("opitios_trade_updates_recovered", "recovered_by_reconciliation", "Events recovered by reconciliation after a gap."),
    ):
        family = CounterMetricFamily(name, text)
        family.add_metric([], section[key])
        yield family
    lag = GaugeMetricFamily("opitios_trade_updates_oldest_event_age_seconds",
                            "Seconds since the last event (or the connection) of the quietest connected account.")
    if section["oldest_last_event_age_seconds"] is not None:  # no sample while no stream is connected
        lag.add_metric([], section["oldest_last_event_age_seconds"])
    yield lag


def connect() -> None:
    metrics.register_collector(listener_collector)
