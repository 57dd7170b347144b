"""The per-account lock of ``sellbot.check_account``: ``cache.add`` with a TTL, so overlapping sweeps,
a redelivered message and two beats never act on one account at once.

On Redis ``add`` is one atomic ``SET NX``. Django's file cache implements ``add`` as check-then-set,
so there it runs under an exclusive ``flock`` shared by every process on the host (the file cache is
host-local anyway).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.core.cache import cache
from django.core.cache.backends.filebased import FileBasedCache


def _add(key: str, value: str, ttl: float) -> bool:
    if isinstance(cache, FileBasedCache):
        path = Path(cache._dir) / "sellbot-locks.flock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                return cache.add(key, value, ttl)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    return cache.add(key, value, ttl)


@contextlib.contextmanager
def held_lock(name: str, *, ttl: float) -> Iterator[bool]:
    """Yield True when this caller holds ``name``; the lock expires after ``ttl`` seconds even if the
    holder dies (SIGKILL), and is released on exit only if still ours."""
    key = f"sellbot:lock:{name}"
    token = f"{os.getpid()}:{uuid.uuid4().hex}"
    acquired = _add(key, token, ttl)
    try:
        yield acquired
    finally:
        if acquired and cache.get(key) == token:
            cache.delete(key)
