"""Per-account upstream budget and statistics, shared by every process through the cache.

Counters live in fixed windows (one minute for the budget); the budget and "requests in the last
minute" use the sliding-window estimate ``current + previous × (1 − elapsed/window)``, so a burst
at a window edge cannot double the rate. ``window_take`` is that check for any key; the API
throttles use it too. On Redis one round trip, one Lua script (``EVALSHA``), does ``INCRBY`` and ``EXPIRE`` (atomic)
and reads what the caller asks along.

Without Redis (embedded mode) the counters live in the embedded cache's memory-mapped counter
table (``opitios.cache``), shared by every process on the host. When the store fails, counters
fall back to this process alone, with an error log, until it answers (the throttles instead fail
open: ``strict=True``).
"""
from __future__ import annotations

import contextvars
import logging
import math
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.commands.core import Script

from opitios.cache import EmbeddedCache

logger = logging.getLogger("opitios.accounts")

WINDOW = 60
TTL = 3 * WINDOW
PREFIX = "acctbudget"


class _Local(Exception):
    """No shared store configured: count in this process."""


class Raw(str):
    """A raw Redis key (no cache prefix) to read along with the counters (``read``, ``read_also``): its value
    comes back as stored (bytes, or None when absent), and only from Redis; elsewhere it is left out of
    ``Reservation.also`` and its caller reads it itself (the streamed quote: trading/quote_source.py)."""


UNREAD = object()  # a Raw key this round trip did not read (no Redis)


# INCRBY and EXPIRE each counted key (ARGV: ttl, how many keys count, then their deltas), then GET the other
# keys: one command, atomic. ``false`` keeps a missing key's place in the reply (nil there).
_COUNT_AND_READ_LUA = """
local ttl, n, out = ARGV[1], tonumber(ARGV[2]), {}
for i = 1, n do
  out[i] = redis.call('INCRBY', KEYS[i], ARGV[2 + i])
  redis.call('EXPIRE', KEYS[i], ttl)
end
for i = n + 1, #KEYS do
  out[i] = redis.call('GET', KEYS[i])
end
return out
"""


# EVALSHA; on NOSCRIPT (a restarted or flushed Redis) redis-py loads it and retries. Bytes: no client's encoder needed.
_count_and_read = Script(None, _COUNT_AND_READ_LUA.encode())


class SharedCounters:
    FLUSH_AFTER = 1.0  # seconds a deferred delta may wait for a round trip to ride along with

    def __init__(self) -> None:
        self._local: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._failed_at = 0.0
        self.degraded = False
        self._pending: dict[str, int] = defaultdict(int)
        self._pending_lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._forget_pending)  # the parent flushes its own

    def _forget_pending(self) -> None:
        self._pending, self._pending_lock, self._flusher = defaultdict(int), threading.Lock(), None

    # --- deferred statistics --------------------------------------------------------
    def defer(self, deltas: dict[str, int]) -> None:
        """Count ``deltas`` with this process's next round trip to the store (or within
        FLUSH_AFTER): statistics need not cost a broker call a round trip of their own."""
        with self._pending_lock:
            for key, delta in deltas.items():
                self._pending[key] += delta
            if self._flusher is None:  # one per process, started on first use
                self._flusher = threading.Thread(target=self._flush_forever, name="budget-stats-flush", daemon=True)
                self._flusher.start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.FLUSH_AFTER)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - incr already counted locally and logged; keep flushing
                pass

    def _take_pending(self) -> dict[str, int]:
        with self._pending_lock:
            if not self._pending:
                return {}
            pending, self._pending = self._pending, defaultdict(int)
        return pending

    def flush(self) -> None:
        pending = self._take_pending()
        if pending:
            self.incr(pending, with_pending=False)

    # --- the cache, or this process when it is down ---------------------------------
    def clear_local(self) -> None:
        self._take_pending()
        with self._lock:
            self._local.clear()

    @property
    def shared(self) -> bool:
        return isinstance(caches["default"], (RedisCache, EmbeddedCache)) and not self.degraded

    def incr(self, deltas: dict[str, int], *, ttl: int = TTL, read: tuple[str, ...] = (), strict: bool = False,
             with_pending: bool = True) -> tuple[list[int], list]:
        """Add ``deltas``; return the new values and the current values of ``read`` (a ``Raw`` key's as
        stored, ``UNREAD`` when not on Redis). ``strict`` raises when the store fails instead of counting
        in this process (and then carries no deferred deltas, which must not be lost with it)."""
        wanted = len(deltas)
        if with_pending and not strict:
            pending = self._take_pending()
            if pending:
                deltas = {**deltas, **{k: deltas.get(k, 0) + v for k, v in pending.items()}}
        values, current = self._incr(deltas, ttl=ttl, read=read, strict=strict)
        return values[:wanted], current

    def _incr(self, deltas: dict[str, int], *, ttl: int, read: tuple[str, ...], strict: bool) -> tuple[list[int], list]:
        try:
            backend = caches["default"]  # the backend itself: ``django.core.cache.cache`` is a proxy
            if isinstance(backend, RedisCache):
                result = self._incr_shared(backend, deltas, ttl, read)
            elif isinstance(backend, EmbeddedCache):
                values, current = backend.counters.incr(deltas, ttl=ttl, read=[k for k in read if not isinstance(k, Raw)])
                found = iter(current)
                result = values, [UNREAD if isinstance(k, Raw) else next(found) for k in read]
            else:
                raise _Local
        except Exception as exc:  # a cache failure (or no shared store): count in this process
            if not isinstance(exc, _Local):
                if strict:
                    raise
                self._cache_failed(exc)
            with self._lock:
                values = []
                for key, delta in deltas.items():
                    self._local[key] += delta
                    values.append(self._local[key])
                return values, [UNREAD if isinstance(k, Raw) else self._local.get(k, 0) for k in read]
        self.degraded = False
        return result

    def get_many(self, keys: list[str]) -> dict[str, int]:
        self.flush()  # this process's own statistics are never stale to itself
        try:
            backend = caches["default"]
            if isinstance(backend, RedisCache):
                found = self._get_many_shared(backend, keys)
            elif isinstance(backend, EmbeddedCache):
                found = backend.counters.get_many(keys)
            else:
                raise _Local
        except Exception as exc:
            if not isinstance(exc, _Local):
                self._cache_failed(exc)
            with self._lock:
                return {k: self._local[k] for k in keys if k in self._local}
        return {k: int(v) for k, v in found.items()}

    @staticmethod
    def _get_many_shared(redis: RedisCache, keys: list[str]) -> dict[str, int]:
        """One MGET. The keys are this module's own (``{PREFIX}:...``, ASCII, short): ``make_key`` without
        the per-key validation that ``RedisCache.get_many`` does, which costs more than the round trip
        itself for the 1,000-account reads (docs/console.md, "Performance")."""
        client = redis._cache.get_client(None)
        values = client.mget([redis.make_key(k) for k in keys]) if keys else []
        return {k: int(v) for k, v in zip(keys, values, strict=True) if v is not None}

    def _incr_shared(self, redis: RedisCache, deltas, ttl, read):
        """One ``EVALSHA`` of ``_COUNT_AND_READ_LUA`` (atomic, one command to pack and one reply to parse: a
        6-command pipeline cost about twice the client CPU, docs/performance.md). ``make_key`` without
        ``validate_key``: its memcached-portability warnings scan every character of every key, and Redis takes
        any key (these are this module's and the throttles' own)."""
        keys = [*(redis.make_key(k) for k in deltas), *(k if isinstance(k, Raw) else redis.make_key(k) for k in read)]
        client = redis._cache.get_client(None, write=True)
        out = _count_and_read(keys=keys, args=[ttl, len(deltas), *deltas.values()], client=client)
        reads = out[len(deltas):]
        return [int(v) for v in out[: len(deltas)]], [v if isinstance(k, Raw) else int(v or 0) for k, v in zip(read, reads, strict=True)]

    def _cache_failed(self, exc: Exception) -> None:
        self.degraded = True
        now = time.monotonic()
        if now - self._failed_at > 30:
            self._failed_at = now
            logger.error("cache unavailable for the upstream budget, counting per process: %s", exc.__class__.__name__)


counters = SharedCounters()


def window_of(now: float, length: int = WINDOW) -> tuple[int, float]:
    return int(now // length), (now % length) / length


def _key(pk: int, name: str, window: int) -> str:
    return f"{PREFIX}:{pk}:{name}:{window}"


@dataclass(frozen=True)
class Reservation:
    allowed: bool
    used: float  # sliding-window estimate, this request included
    limit: int
    retry_after: int
    window_ends_at: float = 0.0  # epoch seconds
    also: dict = field(default_factory=dict)  # what ``read_also`` asked for, read in the same round trip


@dataclass(frozen=True)
class _Counted:
    """One event counted in a window: enough to decide against any limit without another round trip."""
    key: str
    current: int
    previous: int
    elapsed: float
    window: int
    index: int

    def decide(self, limit: int, also: dict | None = None) -> Reservation:
        used = self.current + self.previous * (1 - self.elapsed)
        ends = (self.index + 1) * self.window
        if used <= limit:
            return Reservation(True, used, limit, 0, ends, also or {})
        return Reservation(False, used, limit, retry_after(self.current - 1, self.previous, limit, self.elapsed, self.window), ends,
                           also or {})


def _count(prefixes: dict[str, int], *, now: float, strict: bool, read_also: tuple[str, ...] = ()) -> tuple[list[_Counted], dict]:
    """Count one event under each prefix (value: its window in seconds) and read ``read_also``: one round trip."""
    deltas, reads, meta = {}, [], []
    for prefix, window in prefixes.items():
        index, elapsed = window_of(now, window)
        deltas[f"{prefix}:{index}"] = 1
        reads.append(f"{prefix}:{index - 1}")
        meta.append((index, elapsed, window))
    currents, read = counters.incr(deltas, ttl=3 * max(prefixes.values()), read=(*reads, *read_also), strict=strict)
    counted = [_Counted(key, c, p, elapsed, window, index)
               for key, c, p, (index, elapsed, window) in zip(deltas, currents, read, meta, strict=False)]
    return counted, {k: v for k, v in zip(read_also, read[len(reads):], strict=True) if v is not UNREAD}


def _uncount(counted: _Counted, *, strict: bool) -> None:
    counters.incr({counted.key: -1}, ttl=3 * counted.window, strict=strict)


def window_take(prefix: str, limit: int, *, window: int = WINDOW, now: float | None = None, strict: bool = False,
                read_also: tuple[str, ...] = ()) -> Reservation:
    """Count one event under ``prefix`` unless the sliding-window estimate would exceed ``limit``
    per ``window`` seconds (refused events are not counted). Counter keys: ``{prefix}:{index}``.
    ``read_also`` names other counters, and ``Raw`` Redis keys, to read in the same round trip
    (``Reservation.also``)."""
    now = time.time() if now is None else now
    (counted,), also = _count({prefix: window}, now=now, strict=strict, read_also=read_also)
    taken = counted.decide(limit, also)
    if not taken.allowed:
        _uncount(counted, strict=strict)
    return taken


# --- the order path: the API throttle and the account's upstream budget in one round trip -----------
_prepaid: contextvars.ContextVar[dict[int, _Counted] | None] = contextvars.ContextVar("budget_prepaid", default=None)
# Other windows counted in the throttle's round trip (``also_count``), decided later by ``window_take_precounted``.
_precounted: contextvars.ContextVar[dict[str, _Counted] | None] = contextvars.ContextVar("budget_precounted", default=None)


def window_take_with_budget(prefix: str, limit: int, *, window: int, account_pk: int, strict: bool = False,
                            read_also: tuple[str, ...] = (), also_count: dict[str, int] | None = None) -> Reservation:
    """``window_take`` that also counts one upstream request against account ``account_pk``'s budget
    in the same round trip. The first ``reserve`` of that account in this context decides on it
    against the account's limit of the moment (no round trip); ``prepaid_release`` gives back what no
    upstream call used. A refused take counts nothing. ``also_count`` (prefix: window in seconds)
    counts one event under other prefixes too, for ``window_take_precounted`` to decide on later."""
    extra = {k: v for k, v in (also_count or {}).items() if k != prefix}
    (counted, prepaid, *others), also = _count({prefix: window, f"{PREFIX}:{account_pk}:req": WINDOW, **extra}, now=time.time(),
                                               strict=strict, read_also=read_also)
    taken = counted.decide(limit, also)
    if not taken.allowed:
        counters.incr({counted.key: -1, prepaid.key: -1, **{o.key: -1 for o in others}}, ttl=3 * max(window, WINDOW, *extra.values()),
                      strict=strict)
        return taken
    _prepaid.set({account_pk: prepaid})
    _precounted.set(dict(zip(extra, others, strict=True)))
    return taken


def window_take_precounted(prefix: str, limit: int, *, window: int) -> Reservation:
    """``window_take``, decided without a round trip when this context's throttle already counted
    ``prefix`` (``window_take_with_budget(also_count=...)``); refused, the count is given back."""
    left = _precounted.get()
    counted = left.pop(prefix, None) if left else None
    if counted is None or counted.window != window:
        return window_take(prefix, limit, window=window)
    taken = counted.decide(limit)
    if not taken.allowed:
        _uncount(counted, strict=False)
    return taken


def prepaid_release() -> None:
    """Give back the prepaid budget no upstream call used (deferred: no round trip of its own)."""
    _precounted.set(None)  # an attempt counted and not decided on stays counted
    left = _prepaid.get()
    if left is None:
        return
    _prepaid.set(None)
    if left:
        counters.defer({c.key: -1 for c in left.values()})


def reserve(pk: int, limit: int, *, now: float | None = None) -> Reservation:
    """Count one upstream request against the account's budget, unless it is exhausted."""
    left = _prepaid.get()
    counted = left.pop(pk, None) if left else None
    if counted is None:
        return window_take(f"{PREFIX}:{pk}:req", limit, now=now)
    taken = counted.decide(limit)
    if not taken.allowed:
        _uncount(counted, strict=False)
    return taken


def retry_after(current: int, previous: int, limit: int, elapsed: float, window: int = WINDOW) -> int:
    """Seconds until the sliding estimate leaves room for one more request."""
    if current + 1 > limit or previous == 0:
        return max(1, math.ceil(window * (1 - elapsed)))
    # previous × (1 − t) + current + 1 ≤ limit  →  t ≥ 1 − (limit − current − 1) / previous
    needed = 1 - (limit - current - 1) / previous
    return max(1, math.ceil(window * (needed - elapsed)))


def record(pk: int, *, latency_ms: float, error: bool, now: float | None = None) -> None:
    now = time.time() if now is None else now
    window, _ = window_of(now)
    deltas = {_key(pk, "done", window): 1, _key(pk, "lat_us", window): int(latency_ms * 1000)}
    if error:
        deltas[_key(pk, "err", window)] = 1
    counters.defer(deltas)


@dataclass(frozen=True)
class AccountStats:
    requests_last_minute: int
    errors_last_minute: int
    avg_latency_ms: float | None
    budget_remaining: int


def requests_for(pks: list[int], *, now: float | None = None) -> dict[int, int]:
    """``AccountStats.requests_last_minute`` alone for many accounts: a quarter of ``stats_for``'s keys
    (the traffic page ranks 1,000 accounts by it, then reads the full statistics of the shown ones)."""
    now = time.time() if now is None else now
    window, elapsed = window_of(now)
    found = counters.get_many([_key(pk, "req", w) for pk in pks for w in (window, window - 1)])
    return {pk: round(found.get(_key(pk, "req", window), 0) + found.get(_key(pk, "req", window - 1), 0) * (1 - elapsed))
            for pk in pks}


def stats_for(limits: dict[int, int], *, now: float | None = None) -> dict[int, AccountStats]:
    """Statistics for many accounts in one cache read (``limits``: pk → rate_limit_per_minute)."""
    now = time.time() if now is None else now
    window, elapsed = window_of(now)
    names = ("req", "err", "done", "lat_us")
    keys = [_key(pk, n, w) for pk in limits for n in names for w in (window, window - 1)]
    found = counters.get_many(keys)
    out = {}
    for pk, limit in limits.items():
        def get(name, w, pk=pk):
            return found.get(_key(pk, name, w), 0)

        requests = get("req", window) + get("req", window - 1) * (1 - elapsed)
        errors = get("err", window) + get("err", window - 1) * (1 - elapsed)
        done = get("done", window) + get("done", window - 1)
        latency = (get("lat_us", window) + get("lat_us", window - 1)) / done / 1000 if done else None
        out[pk] = AccountStats(
            requests_last_minute=round(requests),
            errors_last_minute=round(errors),
            avg_latency_ms=round(latency, 2) if latency is not None else None,
            budget_remaining=max(0, math.floor(limit - requests)),
        )
    return out


def shared_sequence(name: str) -> int:
    """A counter every process shares (the round-robin position)."""
    (value,), _ = counters.incr({f"{PREFIX}:seq:{name}": 1}, ttl=86400)
    return value
