"""The last-value cache of streamed market data (docs/streaming.md).

The hub writes every quote and trade here; REST quote views, health and the sell bot read it. With
Redis configured it is Redis, through one pooled client per process (one round trip per read or
write; Django's Redis cache builds a client per call); otherwise the shared embedded cache
(opitios/cache.py), which every process on the host sees.

Values are JSON-able dicts; each carries the exchange ``timestamp`` (ISO 8601) and ``received_at``
(epoch seconds at the hub).
"""
from __future__ import annotations

import json
import threading

from django.conf import settings
from django.core.cache import cache

TTL_SECONDS = 3600  # a symbol nobody streams any more ages out
_PREFIX = "md:lv:"
_local = threading.local()


def redis_client():
    client = getattr(_local, "redis", None)
    if client is None:
        import redis

        client = _local.redis = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    return client


def _namespace() -> str:
    return settings.CACHES["default"].get("KEY_PREFIX", "") + ":" + _PREFIX


def key(kind: str, symbol: str) -> str:
    return f"{kind}:{symbol}"


def put_many(values: dict[str, dict], ttl: int = TTL_SECONDS) -> None:
    """``values``: {key(kind, symbol): value}."""
    if not values:
        return
    if settings.REDIS_URL:
        ns = _namespace()
        pipe = redis_client().pipeline(transaction=False)
        for k, v in values.items():
            pipe.set(ns + k, json.dumps(v, separators=(",", ":")), ex=ttl)
        pipe.execute()
    else:
        cache.set_many({_PREFIX + k: v for k, v in values.items()}, ttl)


def redis_keys(keys: list[str]) -> list[str]:
    """The Redis key names of ``keys``, for a caller that reads them in a round trip of its own
    (``get_many(prefetched=...)``); none without Redis."""
    if not settings.REDIS_URL:
        return []
    ns = _namespace()
    return [ns + k for k in keys]


def get_many(keys: list[str], prefetched: dict[str, bytes | None] | None = None) -> dict[str, dict]:
    """``prefetched``: raw values by Redis key name, already read by the caller; read here if any is missing."""
    if not keys:
        return {}
    if settings.REDIS_URL:
        names = redis_keys(keys)
        if prefetched and all(n in prefetched for n in names):
            raw = [prefetched[n] for n in names]
        else:
            raw = redis_client().mget(names)
        return {k: json.loads(v) for k, v in zip(keys, raw, strict=True) if v is not None}
    found = cache.get_many([_PREFIX + k for k in keys])
    return {k[len(_PREFIX):]: v for k, v in found.items()}


def put(k: str, value: dict, ttl: int = TTL_SECONDS) -> None:
    put_many({k: value}, ttl)


def get(k: str) -> dict | None:
    return get_many([k]).get(k)
