"""What the throttle's round trip reads along (accounts.budget ``read_also``): counters, and ``budget.Raw``
Redis keys as stored (the streamed quote), in the one Lua script on Redis; on the embedded counter table,
or when the store fails, a Raw key is left out (its caller reads it itself)."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import caches

from accounts import budget

from .test_routing import clear_counters

pytestmark = pytest.mark.django_db
RAW = "opitios-test:raw-read-along"


@pytest.fixture(autouse=True)
def _clean():
    clear_counters()
    yield
    clear_counters()
    if settings.REDIS_URL:
        _client().delete(RAW)


def _client():
    return caches["default"]._cache.get_client(None, write=True)


def test_counters_and_raw_keys_are_read_in_the_one_round_trip(round_trips):
    budget.counters.incr({"readalong:version": 7}, strict=True)
    if settings.REDIS_URL:
        _client().set(RAW, b'{"bid": 1}')
    round_trips.clear()
    taken = budget.window_take("throttle:t:readalong", 10, window=60, strict=True,
                               read_also=("readalong:version", "readalong:absent", budget.Raw(RAW), budget.Raw(RAW + ":absent")))
    assert taken.allowed and len(round_trips) == 1
    assert taken.also["readalong:version"] == 7 and taken.also["readalong:absent"] == 0
    if settings.REDIS_URL:
        assert taken.also[budget.Raw(RAW)] == b'{"bid": 1}' and taken.also[budget.Raw(RAW + ":absent")] is None
    else:  # no Redis: not read, left to its caller
        assert RAW not in taken.also and RAW + ":absent" not in taken.also


def test_a_failed_store_leaves_raw_keys_out(monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("store down")

    if settings.REDIS_URL:
        monkeypatch.setattr(budget.counters, "_incr_shared", down)
    else:
        monkeypatch.setattr(caches["default"].counters, "incr", down)
    taken = budget.window_take("throttle:t:readalong-down", 10, window=60, read_also=("readalong:version", budget.Raw(RAW)))
    assert taken.allowed and budget.counters.degraded
    assert taken.also == {"readalong:version": 0}  # this process's count; the raw key unread
    with pytest.raises(ConnectionError):  # strict (the throttles): the failure is the caller's to handle
        budget.window_take("throttle:t:readalong-down", 10, window=60, strict=True, read_also=(budget.Raw(RAW),))


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Lua script is Redis only")
def test_the_script_counts_with_an_expiry_and_survives_a_server_that_lost_it(monkeypatch):
    monkeypatch.setattr(budget._count_and_read, "sha", "0" * 40)  # as after a Redis restart: NOSCRIPT
    (value,), _ = budget.counters.incr({"readalong:ttl": 3}, ttl=90, strict=True)
    assert value == 3
    key = caches["default"].make_key("readalong:ttl")
    assert 0 < _client().ttl(key) <= 90
    assert budget._count_and_read.sha != "0" * 40  # reloaded
    (value,), _ = budget.counters.incr({"readalong:ttl": -1}, ttl=90, strict=True)
    assert value == 2
