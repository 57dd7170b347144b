"""The embedded cache: Django's file cache plus counters every local process shares.

Django's ``FileBasedCache`` pickles, compresses and renames a file on every write, and lists its
whole directory to cull: milliseconds per write. Counters written on every request (throttles,
the per-account upstream budget, the round-robin position) live instead in ``CounterTable``: a
fixed table of slots in one memory-mapped file under the cache directory, updated under
``flock``, so gunicorn workers and Celery processes on the host share them at a few microseconds
per update. ``clear()`` empties both. With Redis configured none of this is used.

The table holds ``SLOTS`` counters; each expires ``ttl`` seconds after its last update. When a
key's probe run is full of live counters, the one expiring soonest is overwritten (a counter
may restart from zero under extreme key churn, never count another key's requests).
"""
from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from django.core.cache.backends.filebased import FileBasedCache

_SLOT = struct.Struct("<16sdq")  # key digest, expires at (epoch seconds), value
_EMPTY = bytes(16)
SLOTS = 1 << 15  # 1 MiB
PROBES = 64


class CounterTable:
    def __init__(self, path: Path, slots: int = SLOTS) -> None:
        self.path = Path(path)
        self.slots = slots
        self._size = slots * _SLOT.size
        self._lock = threading.Lock()
        self._pid = 0
        self._fd = -1
        self._map: mmap.mmap | None = None
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        # The parent's descriptor shares its flock with the parent: a child opens its own.
        self._lock = threading.Lock()
        self._pid, self._fd, self._map = 0, -1, None

    def _open(self) -> mmap.mmap:
        if self._pid != os.getpid() or self._map is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(fd).st_size < self._size:
                os.ftruncate(fd, self._size)
            self._fd, self._map, self._pid = fd, mmap.mmap(fd, self._size), os.getpid()
        return self._map

    @contextmanager
    def _locked(self):
        with self._lock:
            m = self._open()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield m
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _find(self, m: mmap.mmap, digest: bytes, now: float) -> tuple[int, int]:
        """The slot offset for ``digest`` and its live value (0 if absent or expired)."""
        start = int.from_bytes(digest[:8], "little")
        reusable = None
        soonest = None
        for i in range(PROBES):
            offset = ((start + i) % self.slots) * _SLOT.size
            key, expires, value = _SLOT.unpack_from(m, offset)
            if key == digest:
                return offset, (value if expires > now else 0)
            if key == _EMPTY:
                return (reusable if reusable is not None else offset), 0
            if expires <= now:
                if reusable is None:
                    reusable = offset
            elif soonest is None or expires < soonest[1]:
                soonest = (offset, expires)
        return (reusable if reusable is not None else soonest[0]), 0

    @staticmethod
    def _digest(key: str) -> bytes:
        return hashlib.blake2b(key.encode(), digest_size=16).digest()

    def incr(self, deltas: dict[str, int], *, ttl: float, read: tuple[str, ...] = ()) -> tuple[list[int], list[int]]:
        """Add each delta (refreshing its expiry); return the new values and the values of ``read``."""
        now = time.time()
        digests = [(self._digest(k), d) for k, d in deltas.items()]
        reads = [self._digest(k) for k in read]
        with self._locked() as m:
            values = []
            for digest, delta in digests:
                offset, value = self._find(m, digest, now)
                value += delta
                _SLOT.pack_into(m, offset, digest, now + ttl, value)
                values.append(value)
            return values, [self._find(m, d, now)[1] for d in reads]

    def get_many(self, keys: list[str]) -> dict[str, int]:
        now = time.time()
        with self._locked() as m:
            found = {k: self._find(m, self._digest(k), now)[1] for k in keys}
        return {k: v for k, v in found.items() if v}

    def clear(self) -> None:
        with self._locked() as m:
            m[:] = bytes(self._size)


_tables: dict[str, CounterTable] = {}
_tables_lock = threading.Lock()


def counter_table(path: Path) -> CounterTable:
    """One table (one descriptor and mapping) per file and process: Django builds a cache
    backend per thread."""
    key = str(path)
    with _tables_lock:
        table = _tables.get(key)
        if table is None:
            table = _tables[key] = CounterTable(path)
        return table


CULL_CHECK_SECONDS = 5.0
_cull_lock = threading.Lock()
_culled_at: dict[str, float] = {}  # cache folder -> monotonic time of the last count (per process)


class EmbeddedCache(FileBasedCache):
    """``FileBasedCache`` with a shared ``counters`` table (see the module docstring)."""

    def __init__(self, dir, params):
        super().__init__(dir, params)
        self.counters = counter_table(Path(self._dir) / "counters.table")

    def clear(self):
        super().clear()
        self.counters.clear()

    def _cull(self):
        """Django counts the whole folder on every write to enforce ``MAX_ENTRIES``: with a thousand
        short-lived keys (a sweep's per-account markers and locks) the sweep's fan-out alone spent ~7 s
        listing it. The count is a soft bound on disk use, so it is checked at most every
        ``CULL_CHECK_SECONDS`` per process; culling itself is Django's."""
        now = time.monotonic()
        with _cull_lock:
            if now - _culled_at.get(self._dir, float("-inf")) < CULL_CHECK_SECONDS:
                return
            _culled_at[self._dir] = now
        super()._cull()
