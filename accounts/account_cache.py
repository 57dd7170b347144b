"""The account row, cached per process for a few seconds: the order path reads it on every request.

An entry is used only while the shared version counter (one counter of ``accounts.budget``: the
Redis round trip or the embedded counter table, microseconds) still has the value it was read
under, so an edit in any process applies to the next request everywhere. Every save or delete of
an account moves the counter (at once, and again after the commit, so no process keeps a row read
between the two); the services' queryset updates call ``accounts_changed()`` themselves. Rows read
inside a transaction are not kept. When the shared store cannot be read, nothing is cached: the
row comes from the database.
"""
from __future__ import annotations

import copy
import logging
import threading
import time

from django.conf import settings
from django.db import transaction

from . import budget
from .models import AlpacaAccount

logger = logging.getLogger("opitios.accounts")

VERSION_KEY = "accounts:row_version"
VERSION_TTL = 30 * 86400
_entries: dict[str, tuple[float, int, AlpacaAccount]] = {}  # account_id -> (read at, version, row)
_lock = threading.Lock()


def _version() -> int | None:
    if not budget.counters.shared:  # no shared store, or it is failing: every process reads the database
        return None
    try:
        _, (value,) = budget.counters.incr({}, read=(VERSION_KEY,), strict=True)
        return value
    except Exception as exc:  # noqa: BLE001 - the store is down: read the database every time
        logger.debug("account cache version unreadable: %s", exc.__class__.__name__)
        return None


def account_by_id(account_id: str, *, version: int | None = None) -> AlpacaAccount | None:
    """The account with this ``account_id`` (a private copy the caller may change), or None.
    ``version``: the counter ``VERSION_KEY`` as this request already read it (the throttle reads it
    in its own round trip), else it is read here."""
    ttl = settings.ACCOUNT_CACHE_SECONDS
    if ttl <= 0 or not budget.counters.shared:
        version = None
    elif version is None:
        version = _version()
    now = time.monotonic()
    if version is not None:
        entry = _entries.get(account_id)
        if entry is not None and entry[1] == version and now - entry[0] < ttl:
            return copy.copy(entry[2])
    account = AlpacaAccount.objects.filter(account_id=account_id).first()
    if version is not None and account is not None and not transaction.get_connection().in_atomic_block:
        with _lock:
            _entries[account_id] = (now, version, copy.copy(account))
    return account


def known_pk(account_id: str) -> int | None:
    """The pk of an account this process has read (an account's pk never changes), else None."""
    entry = _entries.get(account_id)
    return entry[2].pk if entry is not None else None


def _move_version() -> None:
    with _lock:
        _entries.clear()
    try:
        budget.counters.incr({VERSION_KEY: 1}, ttl=VERSION_TTL, strict=True)
    except Exception as exc:  # noqa: BLE001 - readers cannot read it either, so they use the database
        logger.error("account cache version not moved: %s", exc.__class__.__name__)


def accounts_changed(**_signal) -> None:
    """Every process reads accounts from the database on its next request (also a signal receiver)."""
    _move_version()
    transaction.on_commit(_move_version)
