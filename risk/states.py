"""Trading states: set one (audited, alerted) and read the effective state of an account.

Every order reads the state, so each process keeps a copy of the (few) rows and re-reads them when
the shared version counter has moved: the counter is read at most every ``CHECK_SECONDS`` (one
Redis round trip, or the embedded counter table), so a change made in any process applies to the
next order everywhere within ``CHECK_SECONDS`` plus one read. When the counter cannot be read the
rows come from the database at the same pace. A set moves the counter after its commit and clears
this process's copy at once. The rows are the truth, so a restart starts from them.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction

from accounts import budget
from accounts.models import AlpacaAccount
from audit.services import audit_record
from opitios.alerts import alert_raise, alert_resolve

from .models import GLOBAL, STRICTNESS, State, TradingState

logger = logging.getLogger("opitios.risk")

VERSION_KEY = "risk:state_version"
VERSION_TTL = 30 * 86400
CHECK_SECONDS = 0.25


@dataclass(frozen=True)
class ScopeState:
    scope: str
    state: str
    reason: str = ""
    changed_by: str = ""
    changed_at: datetime | None = None


@dataclass(frozen=True)
class EffectiveState:
    state: str
    reason: str
    scope: str  # the scope the state comes from: "global" or "account:<id>"

    @property
    def active(self) -> bool:
        return self.state == State.ACTIVE


@dataclass(frozen=True)
class StateChange:
    old: ScopeState
    new: ScopeState

    @property
    def changed(self) -> bool:
        return (self.old.state, self.old.reason) != (self.new.state, self.new.reason)


def scope_of(account: AlpacaAccount | None) -> str:
    return GLOBAL if account is None else f"account:{account.account_id}"


# --- the per-process copy -----------------------------------------------------------------


class _Snapshot:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: dict[str, ScopeState] | None = None
        self.version: int | None = None
        self.checked_at = float("-inf")
        self.seen: tuple[int, float] | None = None  # (version, when) read by another caller's round trip

    def clear(self) -> None:
        with self.lock:
            self.rows, self.version, self.checked_at, self.seen = None, None, float("-inf"), None


_snapshot = _Snapshot()


def _version() -> int | None:
    if not budget.counters.shared:
        return None
    try:
        _, (value,) = budget.counters.incr({}, read=(VERSION_KEY,), strict=True)
        return value
    except Exception as exc:  # noqa: BLE001 - the store is down: re-read the rows at the same pace
        logger.debug("trading state version unreadable: %s", exc.__class__.__name__)
        return None


def _read_rows() -> dict[str, ScopeState]:
    return {r.scope: ScopeState(r.scope, r.state, r.reason, r.changed_by, r.changed_at)
            for r in TradingState.objects.exclude(state=State.ACTIVE)}


def _rows() -> dict[str, ScopeState]:
    now = time.monotonic()
    snap = _snapshot
    rows = snap.rows
    if rows is not None and now - snap.checked_at < CHECK_SECONDS:
        return rows
    seen = snap.seen
    version = seen[0] if seen is not None and now - seen[1] < CHECK_SECONDS else _version()
    if rows is not None and version is not None and version == snap.version:
        snap.checked_at = now
        return rows
    rows = _read_rows()
    if not transaction.get_connection().in_atomic_block:  # never keep rows a transaction may roll back
        with snap.lock:
            snap.rows, snap.version, snap.checked_at = rows, version, now
    return rows


def version_seen(value: int | None) -> None:
    """The shared version as a caller just read it in a round trip of its own (the API throttle reads
    it with its counters): the next read of the states uses it instead of reading it again."""
    if value is None:
        return
    snap = _snapshot
    snap.seen = (value, time.monotonic())
    if value != snap.version:
        snap.checked_at = float("-inf")


def _move_version() -> None:
    _snapshot.clear()
    try:
        budget.counters.incr({VERSION_KEY: 1}, ttl=VERSION_TTL, strict=True)
    except Exception as exc:  # noqa: BLE001 - readers then re-read the rows every CHECK_SECONDS
        logger.error("trading state version not moved: %s", exc.__class__.__name__)


# --- reads -----------------------------------------------------------------------------------


def trading_state_effective(*, account: AlpacaAccount) -> EffectiveState:
    """The stricter of the global state and the account's own (global wins a tie)."""
    rows = _rows()
    best = EffectiveState(State.ACTIVE, "", GLOBAL)
    for scope in (GLOBAL, scope_of(account)):
        row = rows.get(scope)
        if row is not None and STRICTNESS[row.state] > STRICTNESS[best.state]:
            best = EffectiveState(row.state, row.reason, scope)
    return best


def trading_state_get(*, account: AlpacaAccount | None) -> ScopeState:
    """The state of one scope as the database holds it now (not the cached copy)."""
    row = TradingState.objects.filter(scope=scope_of(account)).first()
    if row is None:
        return ScopeState(scope_of(account), State.ACTIVE)
    return ScopeState(row.scope, row.state, row.reason, row.changed_by, row.changed_at)


def trading_states_list() -> list[ScopeState]:
    """The global state first, then every account whose state was ever set."""
    rows = {r.scope: ScopeState(r.scope, r.state, r.reason, r.changed_by, r.changed_at) for r in TradingState.objects.all()}
    glob = rows.pop(GLOBAL, ScopeState(GLOBAL, State.ACTIVE))
    return [glob, *sorted(rows.values(), key=lambda s: s.scope)]


# --- the write ---------------------------------------------------------------------------------


def trading_state_set(*, account: AlpacaAccount | None, state: str, reason: str, actor_type: str, actor_id: str) -> StateChange:
    """Set the global state (``account=None``) or one account's. Audited (``risk.state_changed``, with
    who, why, the old and the new state) in the same transaction as the row; alerted (a state other
    than active raises ``trading_state:<scope>``, active resolves it). A set to the same state and
    reason changes nothing and writes nothing."""
    if state not in State.values:
        raise ValueError(f"state must be one of {', '.join(State.values)}, not {state!r}")
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("a reason is required")
    scope = scope_of(account)
    with transaction.atomic():
        row, _ = TradingState.objects.select_for_update().get_or_create(scope=scope, defaults={"account": account})
        old = ScopeState(scope, row.state, row.reason, row.changed_by, row.changed_at)
        if (row.state, row.reason) == (state, reason[:500]):
            return StateChange(old, old)
        row.state, row.reason, row.changed_by, row.changed_at = state, reason[:500], str(actor_id)[:128], datetime.now(UTC)
        row.save()
        new = ScopeState(scope, row.state, row.reason, row.changed_by, row.changed_at)
        audit_record(actor_type=actor_type, actor_id=actor_id, action="risk.state_changed", account=account, obj=row,
                     data={"scope": scope, "old_state": old.state, "new_state": state, "reason": row.reason,
                           "old_reason": old.reason})
        transaction.on_commit(_move_version)
    _snapshot.clear()
    log = logger.warning if state != State.ACTIVE else logger.info
    log("trading state scope=%s old=%s new=%s by=%s reason=%s", scope, old.state, state, actor_id, row.reason)
    key = f"trading_state:{scope}"
    if state == State.ACTIVE:
        alert_resolve(key, f"Trading is active again on {scope} ({row.reason}), set by {actor_id}.")
    else:
        alert_raise(key, f"Trading {state} on {scope}", f"{scope} was set to {state} by {actor_id}: {row.reason} "
                    f"(was {old.state}).")
    return StateChange(old, new)
