"""Throttle counts taken in leases (accounts/window_lease.py): a high limit costs one round trip per lease, no
process admits past the limit, what was read along is reused only while fresh, and a default limit counts
each request as ``budget.window_take`` does."""
from __future__ import annotations

import uuid

import pytest

from accounts import budget, window_lease
from accounts.window_lease import Leases, lease_size

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
    budget.counters.incr({f"{prefix}:{int(__import__('time').time() // DAY)}": 19_999}, ttl=3 * DAY)
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
    assert _counted(prefix, taken) == 52  # a round trip tops the lease up: 3 served, 49 held


def test_a_store_failure_is_the_callers(monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("store down")

    monkeypatch.setattr(budget.counters, "_incr", down)
    with pytest.raises(ConnectionError):  # the throttle fails open on it (trading/throttles.py)
        Leases().take(_prefix(), 500_000, window=DAY, strict=True)
