"""The Redis cache backend reuses one client and pool per process, across calls and threads."""
import threading

import pytest
from django.conf import settings
from django.core.cache import caches

from opitios.redis_cache import ReusedRedisCache

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (the PostgreSQL/Redis pass)")


def test_one_client_for_every_call_and_thread():
    backend = caches["default"]
    assert isinstance(backend, ReusedRedisCache)
    backend.set("reuse:probe", 41)
    assert backend.get("reuse:probe") == 41
    mine = backend._cache.get_client(write=True)
    assert backend._cache.get_client() is mine
    seen = []

    def other_thread():
        other = caches["default"]  # Django builds a backend instance per thread
        seen.append((other is backend, other._cache.get_client(), other.get("reuse:probe")))

    t = threading.Thread(target=other_thread)
    t.start()
    t.join(30)
    assert seen == [(False, mine, 41)]


def test_a_down_server_raises_like_django_and_does_not_poison_the_live_one():
    down = ReusedRedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}})
    import redis

    with pytest.raises(redis.ConnectionError):
        down.get("anything")
    caches["default"].set("reuse:alive", "yes")
    assert caches["default"].get("reuse:alive") == "yes"
