"""Throttle counts taken in leases: an identity with a high limit costs one round trip per many requests.

A streamed quote's own work is a fraction of its throttle's Redis round trip in a threaded web worker
(docs/performance.md, "The REST quote of a streamed symbol"). On a route that opts in (``throttle_lease``), when
the limit is at least ``2 × LEASE_SHARE`` per window, a process counts ``lease_size(limit)`` requests in one
round trip (one ``INCRBY`` of that many, in the same script that reads along) and serves the next ones from
that lease; what the round trip read along is reused for up to ``READ_REUSE_S``.

What holds:
- across processes no more than the limit is admitted: every request served from a lease was counted in the
  shared store before it was served; at the limit's edge a lease shrinks to what fits, and what does not fit
  is given back at once;
- a process holds at most ``lease_size(limit)`` counted and unused (1/LEASE_SHARE of the limit, at most
  LEASE_MAX), lost if the window ends first: the admitted rate is at worst ``processes / LEASE_SHARE`` short;
- a value read along is at most ``READ_REUSE_S`` older than the store's; the streamed quote's ``age_ms``
  counts from the hub's receipt, so the answer stays honest about it.

Below ``2 × LEASE_SHARE`` (every default rate) each request is its own round trip: ``budget.window_take``.
The order routes never lease: they count the upstream budget and read the trading states per order.
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field

from . import budget

LEASE_SHARE = 10_000  # a process leases at most 1/LEASE_SHARE of a limit at a time (0.01%)
LEASE_MAX = 50
READ_REUSE_S = 0.025  # the hub rewrites a symbol about every 100 ms
_MAX_ENTRIES = 4096  # identities and keys remembered per process; past it, start again


def lease_size(limit: int) -> int:
    return max(1, min(LEASE_MAX, limit // LEASE_SHARE))


@dataclass
class _Lease:
    index: int  # the window the lease was counted in
    ends_at: float  # epoch seconds
    left: int = 0
    counted_used: float = 0.0  # the sliding estimate at the last round trip, every leased request included
    refill: threading.Lock = field(default_factory=threading.Lock)  # one refill at a time per identity
    failed_at: float = float("-inf")  # when a refill last failed (this process's clock)


FAILED_RECENTLY_S = 1.0  # threads queued behind a failed refill fail at once instead of each timing out in turn


class StoreFailedRecently(ConnectionError):
    """A refill of this lease failed moments ago: the caller handles it as the store's failure (the throttle
    fails open) without a round trip of its own."""


class Leases:
    def __init__(self, clock=time.monotonic, wall=time.time) -> None:
        self._clock, self._wall = clock, wall
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[tuple[str, int], _Lease] = {}
        self._reads: dict[str, tuple[float, bool, object]] = {}  # key: (read at, readable here, value)

    def take(self, prefix: str, limit: int, *, window: int, read_also: tuple[str, ...] = (),
             strict: bool = False) -> budget.Reservation:
        """``budget.window_take``, served from this process's lease when there is one (module docstring)."""
        size = lease_size(limit)
        if size > 1:
            for _ in range(3):  # a lease spent by other threads meanwhile, or a window that ended: look again
                served = self._take(prefix, limit, size, window, read_also, strict)
                if served is not None:
                    return served
        return budget.window_take(prefix, limit, window=window, strict=strict, read_also=read_also)

    def _take(self, prefix, limit, size, window, read_also, strict) -> budget.Reservation | None:
        now = self._wall()
        with self._lock:
            lease = self._current(prefix, int(now // window), window)
            served = self._serve(lease, limit, read_also)
            counts_left = lease.left > 0
        if served is not None:
            return served
        if counts_left:  # only what is read along is stale: read it, no need to queue behind a refill
            return self._round_trip(prefix, limit, lease, 0, now, window, read_also, strict)
        with lease.refill:
            now = self._wall()
            if int(now // window) != lease.index:
                return None
            if self._clock() - lease.failed_at < FAILED_RECENTLY_S:
                raise StoreFailedRecently("the shared store failed moments ago")
            with self._lock:  # another thread may have refilled while this one waited
                served = self._serve(lease, limit, read_also)
                delta = max(0, size - lease.left)
            if served is not None:
                return served
            try:
                return self._round_trip(prefix, limit, lease, delta, now, window, read_also, strict)
            except Exception:
                lease.failed_at = self._clock()
                raise

    def _current(self, prefix: str, index: int, window: int) -> _Lease:
        lease = self._leases.get((prefix, window))
        if lease is None or lease.index != index:
            if len(self._leases) >= _MAX_ENTRIES:
                self._leases.clear()  # what the dropped leases held is not admitted: under-admission only
            lease = self._leases[(prefix, window)] = _Lease(index, (index + 1) * window)
        return lease

    def _reused(self, keys: tuple[str, ...]) -> dict | None:
        """What the last round trips read of ``keys``, when every one is fresh enough; else None."""
        oldest, also = self._clock() - READ_REUSE_S, {}
        for key in keys:
            read = self._reads.get(key)
            if read is None or read[0] < oldest:
                return None
            if read[1]:
                also[key] = read[2]
        return also

    def _serve(self, lease: _Lease, limit: int, read_also: tuple[str, ...]) -> budget.Reservation | None:
        if lease.left <= 0:
            return None
        also = self._reused(read_also)
        if also is None:
            return None
        lease.left -= 1
        return budget.Reservation(True, lease.counted_used - lease.left, limit, 0, lease.ends_at, also)

    def _round_trip(self, prefix, limit, lease, delta, now, window, read_also, strict) -> budget.Reservation | None:
        """Count ``delta`` more into the lease (0: only read along) and serve this request from it; None when
        a read-only trip finds the lease spent meanwhile (the caller looks again)."""
        index, elapsed = budget.window_of(now, window)
        key = f"{prefix}:{index}"
        at = self._clock()  # before sending: a reused value is at most READ_REUSE_S older than this read
        (current,), read = budget.counters.incr({key: delta}, ttl=3 * window, read=(f"{prefix}:{index - 1}", *read_also),
                                                strict=strict)
        previous, values = read[0], read[1:]
        used = current + previous * (1 - elapsed)
        give_back = min(delta, math.ceil(used - limit)) if used > limit else 0
        if give_back:
            budget.counters.incr({key: -give_back}, ttl=3 * window, strict=strict)
        with self._lock:
            if len(self._reads) >= _MAX_ENTRIES:
                self._reads.clear()
            for k, v in zip(read_also, values, strict=True):
                self._reads[k] = (at, v is not budget.UNREAD, v)
            also = {k: v for k, v in zip(read_also, values, strict=True) if v is not budget.UNREAD}
            lease.left += delta - give_back
            lease.counted_used = used - give_back
            if lease.left <= 0:
                if not delta:
                    return None
                return budget.Reservation(False, used - give_back + 1, limit,
                                          budget.retry_after(current - give_back, previous, limit, elapsed, window),
                                          lease.ends_at, also)
            lease.left -= 1
            return budget.Reservation(True, lease.counted_used - lease.left, limit, 0, lease.ends_at, also)


leases = Leases()
os.register_at_fork(after_in_child=leases._reset)  # a forked worker must not spend its parent's counts
