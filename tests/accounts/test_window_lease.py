"""Throttle counts taken in leases (accounts/window_lease.py): a high limit costs one round trip per lease, no
process admits past the limit, what was read along is reused only while fresh, and a default limit counts
each request as ``budget.window_take`` does."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from accounts import budget, window_lease
from accounts.window_lease import FAILED_RECENTLY_S, Leases, StoreFailedRecently, lease_size

pytestmark = pytest.mark.django_db
DAY = 86400  # one window for the whole test: no window edge in the middle of it


def _prefix() -> str:
    return f"throttle:lease-test:{uuid.uuid4().hex[:8]}"


def _counted(prefix: str, taken: budget.Reservation) -> int:
    key = f"{prefix}:{int(taken.window_ends_at // DAY) - 1}"
    return budget.counters.get_many([key]).get(key, 0)


def test_the_lease_size_is_a_ten_thousandth_of_the_limit_within_bounds():
    assert [lease_size(n) for n in (60, 10_000, 19_999, 20_000, 100_000, 1_000_000)] == [1, 1, 1, 2, 10, 50]


def test_a_default_limit_counts_each_request_in_its_own_round_trip(round_trips):
    prefix, leases = _prefix(), Leases()
    taken = [leases.take(prefix, 60, window=DAY) for _ in range(3)]
    assert len(round_trips) == 3 and all(t.allowed for t in taken)
    assert _counted(prefix, taken[-1]) == 3 and taken[-1].used == 3


def test_a_high_limit_counts_a_lease_per_round_trip(round_trips):
    prefix, leases = _prefix(), Leases(clock=lambda: 0.0)  # what was read along stays fresh
    taken = [leases.take(prefix, 500_000, window=DAY) for _ in range(120)]  # leases of 50
    assert all(t.allowed for t in taken) and len(round_trips) == 3
    assert _counted(prefix, taken[-1]) == 150  # counted before served: 30 held for the next requests
    assert [t.used for t in taken[:3]] == [1, 2, 3] and taken[-1].used == 120


def test_two_processes_together_admit_exactly_the_limit():
    prefix, one, two = _prefix(), Leases(clock=lambda: 0.0), Leases(clock=lambda: 0.0)
    admitted, refused = 0, []
    while len(refused) < 2:
        refused = []
        for leases in (one, two):
            taken = leases.take(prefix, 20_000, window=DAY)  # leases of 2
            if taken.allowed:
                admitted += 1
            else:
                refused.append(taken)
    assert admitted == 20_000 and _counted(prefix, refused[0]) == 20_000  # the refused are not counted
    assert all(not t.allowed and t.retry_after >= 1 and t.used > t.limit for t in refused)


def test_a_lease_shrinks_to_what_fits_at_the_limit():
    prefix, leases = _prefix(), Leases(clock=lambda: 0.0)
    budget.counters.incr({f"{prefix}:{int(time.time() // DAY)}": 19_999}, ttl=3 * DAY)
    taken = leases.take(prefix, 20_000, window=DAY)  # a lease of 2 would pass the limit: 1 given back
    assert taken.allowed and _counted(prefix, taken) == 20_000
    assert not leases.take(prefix, 20_000, window=DAY).allowed


def test_what_was_read_along_is_reused_only_while_fresh(round_trips):
    now = [0.0]
    prefix, leases, version = _prefix(), Leases(clock=lambda: now[0]), f"lease-test:version:{uuid.uuid4().hex[:8]}"
    budget.counters.incr({version: 1})
    assert leases.take(prefix, 500_000, window=DAY, read_also=(version,)).also == {version: 1}
    budget.counters.incr({version: 1})
    round_trips.clear()
    assert leases.take(prefix, 500_000, window=DAY, read_also=(version,)).also == {version: 1}  # reused
    assert not round_trips
    now[0] += window_lease.READ_REUSE_S * 1.01
    taken = leases.take(prefix, 500_000, window=DAY, read_also=(version,))
    assert taken.also == {version: 2} and len(round_trips) == 1
    assert _counted(prefix, taken) == 50  # the lease still had counts: the round trip only read


def test_a_store_failure_is_the_callers(monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("store down")

    monkeypatch.setattr(budget.counters, "_incr", down)
    with pytest.raises(ConnectionError):  # the throttle fails open on it (trading/throttles.py)
        Leases().take(_prefix(), 500_000, window=DAY, strict=True)


def test_a_lower_limit_while_a_lease_is_held_never_gives_counts_back_it_did_not_take():
    prefix, leases = _prefix(), Leases(clock=lambda: 0.0)
    first = leases.take(prefix, 500_000, window=DAY)  # counts 50, holds 49
    admitted = 1 + sum(leases.take(prefix, 20_000, window=DAY).allowed for _ in range(100))  # now leases of 2
    assert admitted == 101
    counted = _counted(prefix, first)
    assert admitted <= counted <= admitted + 2  # every admitted request counted; at most one lease of 2 held


def test_threads_of_two_processes_admit_exactly_the_limit():
    prefix, limit = _prefix(), 40_000  # leases of 4
    processes = [Leases(clock=lambda: 0.0), Leases(clock=lambda: 0.0)]
    admitted = [0] * 16
    errors = []

    def work(i: int) -> None:
        try:
            while processes[i % 2].take(prefix, limit, window=DAY).allowed:
                admitted[i] += 1
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert sum(admitted) == limit
    assert budget.counters.get_many([f"{prefix}:{int(time.time() // DAY)}"]).get(f"{prefix}:{int(time.time() // DAY)}") == limit


def test_a_new_window_starts_a_new_lease_and_weighs_the_previous_one():
    index = int(time.time() // 60) + 1000  # a window of its own, far from now
    wall = [index * 60 + 59.0]
    prefix, leases = _prefix(), Leases(clock=lambda: 0.0, wall=lambda: wall[0])
    assert all(leases.take(prefix, 20_000, window=60).allowed for _ in range(30))  # leases of 2: 30 counted
    wall[0] = (index + 1) * 60 + 30.0  # half-way through the next window
    taken = leases.take(prefix, 20_000, window=60)
    assert taken.allowed and taken.used == 1 + 30 * 0.5 and taken.window_ends_at == (index + 2) * 60


def test_a_refusal_at_the_limit_carries_retry_after_and_counts_nothing():
    index = int(time.time() // 60) + 2000
    wall = [(index + 1) * 60 + 6.0]  # a tenth into the window
    prefix, leases = _prefix(), Leases(clock=lambda: 0.0, wall=lambda: wall[0])
    budget.counters.incr({f"{prefix}:{index}": 25_000}, ttl=600)  # the previous window weighs 22,500
    taken = leases.take(prefix, 20_000, window=60)
    assert not taken.allowed and taken.retry_after == budget.retry_after(0, 25_000, 20_000, 0.1, 60) == 7
    key = f"{prefix}:{index + 1}"
    assert budget.counters.get_many([key]).get(key, 0) == 0


def test_threads_behind_a_failed_refill_fail_at_once(monkeypatch):
    now = [0.0]
    prefix, leases = _prefix(), Leases(clock=lambda: now[0])
    calls = []

    def down(*args, **kwargs):
        calls.append(1)
        raise ConnectionError("store down")

    monkeypatch.setattr(budget.counters, "_incr", down)
    with pytest.raises(ConnectionError):
        leases.take(prefix, 500_000, window=DAY, strict=True)
    with pytest.raises(StoreFailedRecently):  # no round trip of its own: the throttle fails open at once
        leases.take(prefix, 500_000, window=DAY, strict=True)
    assert len(calls) == 1
    now[0] += 2 * FAILED_RECENTLY_S
    with pytest.raises(ConnectionError):
        leases.take(prefix, 500_000, window=DAY, strict=True)
    assert len(calls) == 2
