"""The embedded cache's shared counter table: atomic across processes, expiring, cleared with the cache."""
import multiprocessing
import time

import pytest

from opitios.cache import CounterTable


def _hammer(path, n):
    table = CounterTable(path)
    for _ in range(n):
        table.incr({"shared": 1}, ttl=60)


def test_counts_are_shared_and_atomic_across_processes(tmp_path):
    path = tmp_path / "counters.table"
    ctx = multiprocessing.get_context("spawn")  # a clean child: forking pytest with live DB/Redis clients can hang
    procs = [ctx.Process(target=_hammer, args=(path, 500)) for _ in range(3)]
    for p in procs:
        p.start()
    _hammer(path, 500)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert CounterTable(path).get_many(["shared"]) == {"shared": 2000}


def test_incr_returns_values_and_reads(tmp_path):
    table = CounterTable(tmp_path / "t")
    assert table.incr({"a": 2, "b": 1}, ttl=60, read=("c",)) == ([2, 1], [0])
    assert table.incr({"c": 5}, ttl=60, read=("a", "b")) == ([5], [2, 1])
    assert table.incr({"a": -1}, ttl=60) == ([1], [])


def test_counters_expire(tmp_path):
    table = CounterTable(tmp_path / "t")
    table.incr({"k": 3}, ttl=0.05)
    time.sleep(0.1)
    assert table.get_many(["k"]) == {}
    assert table.incr({"k": 1}, ttl=60) == ([1], [])


def test_full_probe_run_overwrites_the_soonest_expiring_never_another_key(tmp_path):
    table = CounterTable(tmp_path / "t", slots=4)
    for i in range(4):
        table.incr({f"k{i}": 10}, ttl=100 + i)
    table.incr({"new": 1}, ttl=60)
    found = table.get_many([f"k{i}" for i in range(4)] + ["new"])
    assert found["new"] == 1 and "k0" not in found
    assert all(found[f"k{i}"] == 10 for i in (1, 2, 3))


def test_cache_clear_empties_the_counters(settings):
    from django.core.cache import caches

    from opitios.cache import EmbeddedCache

    backend = caches["default"]
    if not isinstance(backend, EmbeddedCache):
        pytest.skip("Redis is configured: no embedded counter table")
    backend.counters.incr({"x": 1}, ttl=60)
    backend.clear()
    assert backend.counters.get_many(["x"]) == {}
