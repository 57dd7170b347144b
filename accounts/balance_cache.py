"""The newest balance snapshot of each account, kept in Redis by whoever writes one (docs/architecture.md,
"Balance refresh after orders and fills"): the order's balance check reads it there, not from the database.

Every snapshot the project writes goes through ``snapshots_remember`` (the refresh task, the beat
refresh, the order's own live fetch), after its commit, so the cache never holds a snapshot the
database lost with a rollback; an older snapshot never replaces a newer one. The reader,
``snapshot_newest``, returns it only if it is at least as young as asked, so a missing, failed or
old entry sends the caller to the database and then to the existing stale rules (live fetch,
fallback, fail-closed): the cache can make a check faster, never make it pass. Redis only: the
embedded cache's file read costs more than the indexed query it would save.

On the order routes the throttle reads the account's entry in its own Redis round trip
(``raw_key``, ``prefetched``) and ``snapshot_newest`` takes it from there: one round trip less per
order (docs/performance.md, "The order's own CPU in the web process"). A prefetched entry is used once,
for its account, within ``PREFETCH_SECONDS``, and only when it is young enough; otherwise Redis is read
as before.
"""
from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache, RedisSerializer
from django.db import transaction

from . import budget
from .models import BalanceSnapshot

logger = logging.getLogger("opitios.accounts")

PREFIX = "balsnap"
TTL = 86400  # past the largest balance_fallback_max_age_seconds
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
PREFETCH_SECONDS = 1.0  # a request's throttle to its balance check: milliseconds
_SERIALIZER = RedisSerializer()  # Django's own encoding of the values it stores (loads needs no options)
# (account pk, the raw entry or None, time.monotonic() when read): this request's prefetched entry
_prefetched: contextvars.ContextVar[tuple[int, bytes | None, float] | None] = contextvars.ContextVar(
    "balance_prefetched", default=None)


def _cache() -> RedisCache | None:
    backend = caches["default"]
    return backend if isinstance(backend, RedisCache) else None


def _key(account_pk: int) -> str:
    return f"{PREFIX}:{account_pk}"


def _store(entries: dict[int, tuple[str, int]]) -> None:
    cache = _cache()
    if cache is None or not entries:
        return
    try:
        current = cache.get_many([_key(pk) for pk in entries])
        newer = {_key(pk): value for pk, value in entries.items() if current.get(_key(pk), ("", -1))[1] < value[1]}
        if newer:
            cache.set_many(newer, TTL)
    except Exception as exc:  # noqa: BLE001 - readers then use the database
        logger.warning("balance snapshot not cached: %s", exc.__class__.__name__)


def snapshots_remember(snapshots: Iterable[BalanceSnapshot]) -> None:
    """Cache these snapshots (each the newest of its account unless a newer one is cached), after the commit."""
    entries: dict[int, tuple[str, int]] = {}
    for snap in snapshots:
        at_us = (snap.fetched_at - EPOCH) // US  # exact: no float rounding
        if snap.account_id not in entries or entries[snap.account_id][1] < at_us:
            entries[snap.account_id] = (str(snap.cash), at_us)
    if entries and _cache() is not None:
        transaction.on_commit(lambda: _store(entries))


def raw_key(account_pk: int) -> budget.Raw | None:
    """The Redis key of the account's entry, for a round trip that reads it along (``budget.Raw``);
    None without Redis."""
    cache = _cache()
    return budget.Raw(cache.make_key(_key(account_pk))) if cache is not None else None


def prefetched(account_pk: int | None, raw: bytes | None = None) -> None:
    """The entry of ``account_pk`` as this request's round trip read it; None forgets it."""
    _prefetched.set(None if account_pk is None else (account_pk, raw, time.monotonic()))


def _take_prefetched(account_pk: int) -> tuple[str, int] | None:
    found = _prefetched.get()
    if found is None:
        return None
    _prefetched.set(None)
    pk, raw, at = found
    if pk != account_pk or raw is None or time.monotonic() - at > PREFETCH_SECONDS:
        return None
    try:
        return _SERIALIZER.loads(raw)
    except Exception as exc:  # noqa: BLE001 - read it from Redis instead
        logger.debug("prefetched balance snapshot unreadable: %s", exc.__class__.__name__)
        return None


def _young_enough(account_pk: int, value: tuple[str, int] | None, since: datetime) -> BalanceSnapshot | None:
    if value is None:
        return None
    cash, at_us = value
    fetched_at = EPOCH + at_us * US
    if fetched_at < since:
        return None
    return BalanceSnapshot(account_id=account_pk, cash=Decimal(cash), fetched_at=fetched_at)


def snapshot_newest(*, account_pk: int, since: datetime) -> BalanceSnapshot | None:
    """The cached newest snapshot (``cash`` and ``fetched_at`` only, unsaved) if fetched at ``since`` or
    later; None when there is none, it is older, or the cache cannot be read: then ask the database."""
    cache = _cache()
    if cache is None:
        return None
    found = _young_enough(account_pk, _take_prefetched(account_pk), since)
    if found is not None:
        return found
    try:
        value = cache.get(_key(account_pk))
    except Exception as exc:  # noqa: BLE001 - the database answers
        logger.debug("balance snapshot cache unreadable: %s", exc.__class__.__name__)
        return None
    return _young_enough(account_pk, value, since)
