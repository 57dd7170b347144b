"""A bulkhead between order traffic and everything else in one web process.

gunicorn's gthread worker has a fixed number of request threads. When Alpaca is slow on orders,
every order request holds its thread for up to the broker timeout; without a bound, a burst of
orders takes every thread and market data (and /health) queue behind them. ``order_slot`` bounds
the order calls in flight per process at ``BROKER_ORDER_CONCURRENCY`` (default: half the threads).
An order that finds no free slot within its wait is refused at once with 503 ``broker_busy`` and
``Retry-After``; its idempotency key stays retryable, so the client retries with the same
``client_order_id``. Bulk orders run on their own pool threads and wait for a slot instead.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

_lock = threading.Lock()
_slots: threading.BoundedSemaphore | None = None
_size = 0


def _semaphore() -> threading.BoundedSemaphore:
    global _slots, _size
    size = max(1, int(settings.BROKER_ORDER_CONCURRENCY))
    with _lock:
        if _slots is None or size != _size:  # built lazily, after gunicorn forks; rebuilt if the setting changes (tests)
            _slots, _size = threading.BoundedSemaphore(size), size
        return _slots


@contextmanager
def order_slot(*, wait: float) -> Iterator[bool]:
    """Yield True holding one of the process's order slots, or False when none freed within ``wait`` s."""
    slots = _semaphore()
    acquired = slots.acquire(timeout=wait) if wait > 0 else slots.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            slots.release()
