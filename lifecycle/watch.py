"""The trade-updates listener's "stream down" alert (docs/deployment.md, "Alerts").

A dead listener cannot report itself, so beat runs this check in a worker (``lifecycle.watch``) on the
figures each shard's owner publishes every poll (lifecycle/listener.py). ``stream_down:trade_updates:<shard>``
is raised once one of these has lasted ``alerts.stream_down_seconds``, and resolved when it is over:

- the shard has streamed accounts but no owner reports it (its report expires ``STATE_TTL`` after the
  owner died): down since the first check that saw it missing;
- some of the shard's trade streams are disconnected: down since the longest-disconnected one dropped.

A shard without an enabled, validly configured account is never down.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count

from opitios.alerts import alert_down_for, alert_up
from opitios.config import current_config

from .listener import shard_key, streamed_accounts

logger = logging.getLogger("opitios.lifecycle")

KEY = "stream_down:trade_updates:"


def _down(shard: int, count: int, accounts: int, report: dict | None) -> tuple[float | None, str] | None:
    """(since, why) when the shard's streams are down, None when they are up."""
    if report is None:
        return None, (f"No listener owns shard {shard}/{count} ({accounts} accounts): is `manage.py listen_trade_updates` "
                      "running? Fills and cancels reach the ledger only by reconciliation meanwhile.")
    if report["connected"] < report["expected"]:
        return report.get("down_since"), (
            f"{report['expected'] - report['connected']} of {report['expected']} trade streams of shard {shard}/{count} are "
            f"disconnected (node {report['node']}); they reconnect with backoff, see the listener's log for why.")
    return None


def listener_check() -> dict[int, str]:
    """Raise or resolve each shard's stream-down alert; each shard's state, for the task's result."""
    count = settings.LIFECYCLE_SHARD_COUNT
    accounts = dict(streamed_accounts(count).order_by().values("shard").annotate(n=Count("pk")).values_list("shard", "n"))
    try:
        reports = cache.get_many([shard_key(i) for i in range(count)])
    except Exception as exc:  # the cache is down: the listeners' state is unknown, and so is the alerts' own
        logger.warning("trade-stream check skipped: status store unavailable (%s)", exc.__class__.__name__)
        return dict.fromkeys(range(count), "unknown")
    seconds = current_config().alerts.stream_down_seconds
    result = {}
    for shard in range(count):
        key = KEY + str(shard)
        down = _down(shard, count, accounts.get(shard, 0), reports.get(shard_key(shard))) if accounts.get(shard) else None
        if down is None:
            alert_up(key, f"Every trade stream of shard {shard}/{count} is connected again.")
            result[shard] = "up" if accounts.get(shard) else "not expected"
            continue
        since, why = down
        if alert_down_for(key, since, seconds, f"trade-updates stream down: shard {shard}/{count}", why):
            logger.warning("stream down past %s s: trade updates shard %s", seconds, shard)
        result[shard] = "down"
    return result
