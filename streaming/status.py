"""The hub's status, published to the last-value cache every second: read by /health/detailed and by
``pong``. A hub that is down or stale makes health degraded, never unhealthy (REST quotes fall back)."""
from __future__ import annotations

import time

from opitios import lastvalue
from opitios.health import DEGRADED, OK

STATUS_KEY = "hub:status"
STALE_SECONDS = 5.0  # the hub publishes every second


def publish(status: dict) -> None:
    lastvalue.put(STATUS_KEY, {**status, "updated_at": time.time()}, ttl=60)


def read() -> dict | None:
    return lastvalue.get(STATUS_KEY)


def summary(status: dict | None, now: float | None = None) -> dict:
    """Per feed: connected, subscribed symbols, last message age, reconnects in the last hour; the leader."""
    now = now or time.time()
    if status is None or now - status.get("updated_at", 0) > STALE_SECONDS:
        return {"status": DEGRADED, "hub": "down", "leader": status.get("leader") if status else None, "feeds": {}}
    feeds = {}
    worst = OK
    for name, f in status.get("feeds", {}).items():
        age = None if f.get("last_message_at") is None else round((now - f["last_message_at"]) * 1000)
        feeds[name] = {
            "connected": f.get("connected", False),
            "subscribed_symbols": f.get("subscribed", 0),
            "last_message_age_ms": age,
            "reconnects_last_hour": f.get("reconnects_last_hour", 0),
            "gaps": f.get("gaps", 0),
            "last_gap_seconds": f.get("last_gap_seconds"),
        }
        if not f.get("connected", False):
            worst = DEGRADED
    # tick_checks: tick-driven exit evaluations sent to the sell bot, and quotes conflated by the per-symbol bound
    return {"status": worst, "hub": "up", "leader": status.get("leader"), "feeds": feeds, "tick_checks": status.get("tick_checks")}


def health_section() -> dict:
    try:
        status = read()
    except Exception as exc:  # the cache (Redis) is down: the hub's state is unknown, REST quotes still work
        return {"status": DEGRADED, "hub": "unknown", "error": f"status store unavailable ({exc.__class__.__name__})", "feeds": {}}
    return summary(status)
