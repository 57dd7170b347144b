"""Open /ws/market-data connections per user and per IP, for their limits. With Redis the count spans
every ASGI process (a sorted set per key, each member refreshed while its connection lives, so a crashed
process's connections age out); without Redis there is one ASGI process and a dict suffices."""
from __future__ import annotations

import time

from django.conf import settings

from opitios import lastvalue

LIVENESS_SECONDS = 15.0  # a member not refreshed for this long is gone
_local: dict[str, dict[str, float]] = {}


def _ns(key: str) -> str:
    return settings.CACHES["default"].get("KEY_PREFIX", "") + ":md:conns:" + key


def count_and_add(keys: list[str], member: str) -> dict[str, int]:
    """Add ``member`` under each key; the count of live members under each, including it."""
    now = time.time()
    if settings.REDIS_URL:
        pipe = lastvalue.redis_client().pipeline(transaction=False)
        for k in keys:
            pipe.zremrangebyscore(_ns(k), 0, now - LIVENESS_SECONDS)
            pipe.zadd(_ns(k), {member: now})
            pipe.zcard(_ns(k))
            pipe.expire(_ns(k), int(LIVENESS_SECONDS * 4))
        results = pipe.execute()
        return {k: results[i * 4 + 2] for i, k in enumerate(keys)}
    counts = {}
    for k in keys:
        members = _local.setdefault(k, {})
        members[member] = now
        counts[k] = len(members)
    return counts


def refresh(keys: list[str], member: str) -> None:
    if settings.REDIS_URL:
        pipe = lastvalue.redis_client().pipeline(transaction=False)
        for k in keys:
            pipe.zadd(_ns(k), {member: time.time()})
        pipe.execute()


def remove(keys: list[str], member: str) -> None:
    if settings.REDIS_URL:
        pipe = lastvalue.redis_client().pipeline(transaction=False)
        for k in keys:
            pipe.zrem(_ns(k), member)
        pipe.execute()
    else:
        for k in keys:
            _local.get(k, {}).pop(member, None)
