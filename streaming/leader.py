"""The hub's leader lock in Redis: exactly one hub streams. The holder renews it every ``ttl / 3``; a
hub that dies (even by SIGKILL) lets it expire after ``ttl`` and a standby, polling every ``ttl / 3``,
takes it: the upstream is back within about ``ttl + ttl / 3`` plus one connect (docs/streaming.md)."""
from __future__ import annotations

import redis
from django.conf import settings

LOCK_TTL_SECONDS = 5.0
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class LeaderLock:
    def __init__(self, identity: str, ttl: float = LOCK_TTL_SECONDS) -> None:
        self.identity = identity
        self.ttl_ms = int(ttl * 1000)
        prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
        self.key = f"{prefix}:md:hub:leader"
        self.client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.identity, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        return bool(self.client.eval(_RENEW, 1, self.key, self.identity, self.ttl_ms))

    def release(self) -> None:
        self.client.eval(_RELEASE, 1, self.key, self.identity)

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if value else None
