"""The market-data hub's "stream down" alert (docs/deployment.md, "Alerts").

A dead hub cannot report itself, so beat runs this check in a worker (``streaming.watch``) on the status
the hub leader publishes every second (streaming/status.py):

- ``stream_down:hub``: no leader has published for ``status.STALE_SECONDS``; down since its last status
  (or, once that has expired too, since the first check that saw it);
- ``stream_down:<kind>:<feed>``: the leader runs but that feed is not connected (or not started); down
  since it dropped, or since the hub started.

Each is raised once it has lasted ``alerts.stream_down_seconds`` and resolved when it is over. Nothing is
raised while the hub has nothing to stream with: no ``market_data.stream_account`` and no enabled paper
account (a feed's own alert waits while the hub's is the one that holds).
"""
from __future__ import annotations

import logging
import time

from accounts.broker.stream import stream_accounts
from opitios.alerts import alert_down_for, alert_up
from opitios.config import current_config
from streaming import status
from streaming.hub import configured_feeds

logger = logging.getLogger("opitios.hub")

KEY = "stream_down:"


def hub_expected() -> bool:
    """A configured stream account (present or not: a missing one must be noticed), or an enabled paper account."""
    return bool(current_config().market_data.stream_account) or stream_accounts(None).exists()


def _down(name: str, since: float | None, seconds: int, body: str) -> None:
    if alert_down_for(KEY + name, since, seconds, f"market-data stream down: {name}", body):
        logger.warning("stream down past %s s: %s", seconds, name)


def hub_check() -> dict[str, str]:
    """Raise or resolve the hub's stream-down alerts; the state of each stream, for the task's result."""
    config = current_config()
    names = ["hub", *configured_feeds(config.market_data)]
    if not hub_expected():
        for name in names:
            alert_up(KEY + name)
        return dict.fromkeys(names, "not expected")
    seconds = config.alerts.stream_down_seconds
    try:
        doc = status.read()
    except Exception as exc:  # the cache is down: the hub's state is unknown, and so is the alerts' own
        logger.warning("stream check skipped: status store unavailable (%s)", exc.__class__.__name__)
        return dict.fromkeys(names, "unknown")
    if doc is None or time.time() - doc.get("updated_at", 0) > status.STALE_SECONDS:
        _down("hub", doc.get("updated_at") if doc else None, seconds,
              "No market-data hub leader publishes its status: is `manage.py run_hub` running (the ws process hosts "
              "it without Redis)? Clients get no ticks and REST quotes go to Alpaca.")
        return {"hub": "down"}
    alert_up(KEY + "hub", "A hub leader streams again.")
    result = {"hub": "up"}
    feeds = doc.get("feeds") or {}
    for name in names[1:]:
        feed = feeds.get(name)
        if feed is not None and feed.get("connected"):
            alert_up(KEY + name, f"The {name} feed is connected again.")
            result[name] = "up"
            continue
        if feed is None:
            why = "The hub has not started this feed: it found no enabled account to stream with (market_data.stream_account)."
        else:
            why = f"The hub's {name} feed is disconnected and reconnecting with backoff; see the hub's log for why."
        _down(name, feed.get("down_since") if feed else None, seconds, why)
        result[name] = "down"
    return result
