"""The trade-updates section of /health/detailed: per shard, the accounts expected and connected, the
reconnects and the oldest last-event age, as the listener last published them."""
from django.conf import settings
from django.core.cache import cache

from opitios.health import DEGRADED, OK

from .listener import shard_key


def trade_updates_section() -> dict:
    count = settings.LIFECYCLE_SHARD_COUNT
    try:
        shards = cache.get_many([shard_key(i) for i in range(count)])
    except Exception as exc:  # the cache (Redis) is down: the listeners' state is unknown, orders still work
        return {"status": DEGRADED, "shards": count, "error": f"status store unavailable ({exc.__class__.__name__})"}
    missing = [i for i in range(count) if shard_key(i) not in shards]
    rows = list(shards.values())
    expected = sum(r["expected"] for r in rows)
    connected = sum(r["connected"] for r in rows)
    ages = [r["oldest_last_event_age_seconds"] for r in rows if r["oldest_last_event_age_seconds"] is not None]
    return {
        # Orders still work without the listener; the ledger then catches up by reconciliation.
        "status": OK if not missing and connected == expected else DEGRADED,
        "shards": count,
        "shards_reporting": count - len(missing),
        "accounts_expected": expected,
        "accounts_connected": connected,
        "reconnects": sum(r["reconnects"] for r in rows),
        "events": sum(r["events"] for r in rows),
        "recovered_by_reconciliation": sum(r["recovered"] for r in rows),
        "oldest_last_event_age_seconds": max(ages) if ages else None,
    }
