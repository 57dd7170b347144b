"""Writes to the audit trail: appending events and recording chain checks."""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.utils import timezone

from audit.chain import GENESIS_HASH, canonical_data_json, canonical_row_before_seq, compute_hash, normalise_data, verify_chain
from audit.models import ActorType, AuditChainCheck, AuditEvent, CheckSource
from audit.secrets_guard import redact_secrets
from opitios.db import fetchone_prepared

logger = logging.getLogger("opitios.audit")

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_ACTOR_TYPES = frozenset(ActorType.values)

_SQL = {
    # One statement: lock the head, take the next seq, hash, insert the event and move the head.
    # The hash is the documented sha256 (audit.chain): Python sends the canonical JSON up to the seq,
    # PostgreSQL appends the seq it took under the lock. FOR UPDATE waits for a concurrent append
    # and then reads the head it committed (READ COMMITTED), so appends stay gapless and in order.
    # ``{alongside}`` is the caller's own write (``alongside=``), which then happens only with the
    # event: the statement is atomic by itself, so it needs no BEGIN/COMMIT round trips. It runs first
    # and the head is locked only if it matched: the caller's row, then the head, the order every other
    # writer takes them in (the trade-updates ledger locks its records, then the head). The other way
    # round, an order's outcome and the listener's batch holding its fill deadlocked (bench.order_overhead).
    # Its check that the head exists does not lock it: the head row, once made, is never deleted.
    "postgresql": {
        "append": (
            "WITH {alongside}"
            "head AS (SELECT seq + 1 AS seq, hash AS prev_hash FROM audit_auditchainhead WHERE id = 1{after} FOR UPDATE), "
            "appended AS (INSERT INTO audit_auditevent (seq, at, actor_type, actor_id, action, account_id, object_type, object_id, data, prev_hash, hash) "
            "SELECT seq, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, prev_hash, "
            "encode(sha256(convert_to(prev_hash || %s || seq::text || '}}', 'UTF8')), 'hex') FROM head RETURNING seq, prev_hash, hash) "
            "UPDATE audit_auditchainhead AS h SET seq = appended.seq, hash = appended.hash FROM appended WHERE h.id = 1 "
            "RETURNING appended.seq, appended.prev_hash, appended.hash"
        ),
        "alongside": "alongside AS ({sql} AND EXISTS (SELECT 1 FROM audit_auditchainhead WHERE id = 1) RETURNING 1), ",
        "after": " AND EXISTS (SELECT 1 FROM alongside)",
        "lock": "SELECT seq, hash FROM audit_auditchainhead WHERE id = 1 FOR UPDATE",
    },
    "sqlite": {
        # SQLite runs every transaction as BEGIN IMMEDIATE (settings): writers are already serialised.
        "lock": "SELECT seq, hash FROM audit_auditchainhead WHERE id = 1",
        "insert": "INSERT INTO audit_auditevent (seq, at, actor_type, actor_id, action, account_id, object_type, object_id, data, prev_hash, hash) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        "head": "UPDATE audit_auditchainhead SET seq = %s, hash = %s WHERE id = 1",
    },
}
_CREATE_HEAD = "INSERT INTO audit_auditchainhead (id, seq, hash) VALUES (1, %s, %s) ON CONFLICT (id) DO NOTHING"
_LAST_EVENT = "SELECT seq, hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1"
_HEAD_EXISTS = "SELECT 1 FROM audit_auditchainhead WHERE id = 1"


class AlongsideMissing(Exception):
    """The write to commit with an audit event matched no row; neither was written."""


def audit_record(
    *,
    actor_type: str,
    actor_id: str | int | None,
    action: str,
    account: Any = None,
    obj: models.Model | tuple[str, str | int] | None = None,
    data: Mapping | None = None,
    using: str = DEFAULT_DB_ALIAS,
    alongside: tuple[str, list] | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction (or its own when there is none).

    ``account`` is an ``AlpacaAccount`` or its pk. ``obj`` is a model instance (``app_label.model``
    and its pk) or an explicit ``(object_type, object_id)`` pair. Credential-looking keys in ``data``
    are redacted. The chain head row stays locked until the caller's transaction ends, so keep
    slow work (broker calls) outside that transaction.

    ``alongside`` is one ``UPDATE ... WHERE ...`` (SQL and parameters) committed atomically with the
    event; on PostgreSQL in the same statement (one round trip). ``AlongsideMissing`` when it
    matched no row: then neither it nor the event was written.
    """
    row, payload, clean = _prepare(actor_type=actor_type, actor_id=actor_id, action=action, account=account, obj=obj, data=data)
    connection = connections[using]
    at = timezone.now()
    if connection.vendor == "postgresql":
        seq, prev_hash, digest = _append_postgresql(connection, at=at, row=row, payload=payload, alongside=alongside)
    else:
        with transaction.atomic(using=using, savepoint=False), connection.cursor() as cursor:
            matched = True
            if alongside is not None:
                cursor.execute(*alongside)
                matched = cursor.rowcount > 0
            if matched:  # (raised below: nothing was written, so the caller's transaction stays usable)
                seq, prev_hash, digest = _append_serialised(cursor, at=at, row=row, payload=payload, connection=connection)
        if not matched:
            raise AlongsideMissing(alongside[0])

    return _appended(row, clean, at=at, seq=seq, prev_hash=prev_hash, digest=digest, using=using)


def audit_record_many(events: list[dict], *, using: str = DEFAULT_DB_ALIAS) -> list[AuditEvent]:
    """``audit_record`` for several events (each a dict of its keyword arguments, without ``alongside``),
    appended in order inside the caller's transaction in three statements whatever their number: lock
    the head, insert them all (hashed here, as the serialised path does), move the head. For a writer
    that commits a burst at once (the trade-updates ledger). On PostgreSQL one or two events take
    ``audit_record``'s one statement each instead."""
    connection = connections[using]
    if connection.vendor == "postgresql" and len(events) < 3:
        # One statement each (lock, insert, move the head), prepared: fewer round trips than three.
        return [audit_record(**event, using=using) for event in events]
    prepared = [_prepare(**e) for e in events]
    if not prepared:
        return []
    at = timezone.now()
    sql = _SQL["sqlite"]
    lock = _SQL["postgresql"]["lock"] if connection.vendor == "postgresql" else sql["lock"]
    with transaction.atomic(using=using, savepoint=False), connection.cursor() as cursor:
        cursor.execute(lock)
        head = cursor.fetchone() or _create_head(cursor, lock)
        seq, prev_hash = head
        params, chained = [], []
        for row, payload, clean in prepared:
            seq, digest = seq + 1, compute_hash(prev_hash, seq=seq + 1, at=at, **row)
            params.append([seq, connection.ops.adapt_datetimefield_value(at), row["actor_type"], row["actor_id"], row["action"],
                           row["account"], row["object_type"], row["object_id"], payload, prev_hash, digest])
            chained.append((row, clean, seq, prev_hash, digest))
            prev_hash = digest
        cursor.executemany(sql["insert"], params)
        cursor.execute(sql["head"], [seq, prev_hash])
    return [_appended(row, clean, at=at, seq=n, prev_hash=prev, digest=digest, using=using) for row, clean, n, prev, digest in chained]


def _prepare(*, actor_type: str, actor_id, action: str, account=None, obj=None, data: Mapping | None = None) -> tuple[dict, str, dict]:
    """The row to append, its data as JSON, and the data (credential-looking keys redacted)."""
    if actor_type not in _ACTOR_TYPES:
        raise ValueError(f"actor_type must be one of {sorted(_ACTOR_TYPES)}, not {actor_type!r}")
    if not _ACTION.match(action or ""):
        raise ValueError(f"action must be dotted lowercase words like 'order.submitted', not {action!r}")
    found: list[str] = []
    clean = normalise_data(redact_secrets(dict(data or {}), found=found))
    if found:
        logger.warning("audit %s: credential-looking data redacted at %s", action, ", ".join(found))
    object_type, object_id = _object_ref(obj)
    row = {
        "actor_type": actor_type,
        "actor_id": "" if actor_id is None else str(actor_id),
        "action": action,
        "account": getattr(account, "pk", account),
        "object_type": object_type,
        "object_id": object_id,
        "data": clean,
    }
    # Stored as the canonical serialisation (sorted keys): the hash is built around the same text.
    return row, canonical_data_json(clean, normalised=True), clean


def _appended(row: dict, clean: dict, *, at, seq: int, prev_hash: str, digest: str, using: str) -> AuditEvent:
    event = AuditEvent(seq=seq, at=at, actor_type=row["actor_type"], actor_id=row["actor_id"], action=row["action"],
                       account_id=row["account"], object_type=row["object_type"], object_id=row["object_id"], data=clean,
                       prev_hash=prev_hash, hash=digest)
    event._state.adding = False
    event._state.db = using
    _notify_observers(event, using)
    return event


# Observers of committed events: metrics and alerts follow the ledger instead of each writer
# calling them. (prefix, callback) pairs; a callback's failure is logged, never raised.
_observers: list[tuple[str, Callable[[AuditEvent], None]]] = []


def observe(prefix: str, callback: Callable[[AuditEvent], None]) -> None:
    """``callback(event)`` after the commit of every event whose action starts with ``prefix``."""
    _observers.append((prefix, callback))


def _notify_observers(event: AuditEvent, using: str) -> None:
    for prefix, callback in _observers:
        if event.action.startswith(prefix):
            transaction.on_commit(lambda cb=callback: _call_observer(cb, event), using=using)


def _call_observer(callback: Callable[[AuditEvent], None], event: AuditEvent) -> None:
    try:
        callback(event)
    except Exception:
        logger.exception("audit observer %s failed on %s", getattr(callback, "__name__", callback), event.action)


def _append_postgresql(connection, *, at, row: dict, payload: str, alongside: tuple[str, list] | None) -> tuple[int, str, str]:
    sql = _SQL["postgresql"]
    statement = sql["append"].format(alongside=sql["alongside"].format(sql=alongside[0]) if alongside else "",
                                     after=sql["after"] if alongside else "")
    params = [*(alongside[1] if alongside else ()),
              connection.ops.adapt_datetimefield_value(at), row["actor_type"], row["actor_id"], row["action"], row["account"],
              row["object_type"], row["object_id"], payload, canonical_row_before_seq(
                  at=at, actor_type=row["actor_type"], actor_id=row["actor_id"], action=row["action"], account=row["account"],
                  object_type=row["object_type"], object_id=row["object_id"], data_json=payload)]
    # Prepared: the order's outcome (trading/outcome.py) once per order, the ledger's fills one each.
    appended = fetchone_prepared(connection, statement, params)
    if appended is not None:
        return appended
    # Nothing written: no head row yet (the first append; a concurrent first append may have made
    # it since), or ``alongside`` matched no row. With the head certainly there, once more.
    with transaction.atomic(using=connection.alias, savepoint=False), connection.cursor() as cursor:
        cursor.execute(_HEAD_EXISTS)
        if cursor.fetchone() is None:
            _create_head(cursor, sql["lock"])
        cursor.execute(statement, params)
        appended = cursor.fetchone()
    if appended is None:
        raise AlongsideMissing(alongside[0] if alongside else "")
    return appended


def _append_serialised(cursor, *, at, row: dict, payload: str, connection) -> tuple[int, str, str]:
    sql = _SQL["sqlite"]
    cursor.execute(sql["lock"])
    head = cursor.fetchone()
    if head is None:
        head = _create_head(cursor, sql["lock"])
    seq, prev_hash = head[0] + 1, head[1]
    digest = compute_hash(prev_hash, seq=seq, at=at, **row)
    cursor.execute(sql["insert"], [seq, connection.ops.adapt_datetimefield_value(at), row["actor_type"], row["actor_id"], row["action"],
                                   row["account"], row["object_type"], row["object_id"], payload, prev_hash, digest])
    cursor.execute(sql["head"], [seq, digest])
    return seq, prev_hash, digest


def _object_ref(obj) -> tuple[str, str]:
    if obj is None:
        return "", ""
    if isinstance(obj, models.Model):
        return obj._meta.label_lower, str(obj.pk)
    object_type, object_id = obj
    return str(object_type), str(object_id)


def _create_head(cursor, lock_sql: str) -> tuple[int, str]:
    """First append (or a head row lost): start the head from the last event, or from genesis."""
    cursor.execute(_LAST_EVENT)
    last = cursor.fetchone() or (0, GENESIS_HASH)
    cursor.execute(_CREATE_HEAD, list(last))
    cursor.execute(lock_sql)  # a concurrent first append may have won; take whatever head is there now
    return cursor.fetchone()


def audit_chain_check_run(*, since: int | None = None, source: str = CheckSource.BEAT) -> AuditChainCheck:
    """Verify the chain (streaming) and store the result for the admin and detailed health."""
    started = time.perf_counter()
    verdict = verify_chain(since=since)
    check = AuditChainCheck.objects.create(
        ran_at=timezone.now(),
        ok=verdict.ok,
        count=verdict.count,
        last_seq=verdict.last_seq,
        first_broken_seq=verdict.first_broken_seq,
        reason=verdict.reason[:300],
        since_seq=since,
        duration_ms=int((time.perf_counter() - started) * 1000),
        source=source,
    )
    if verdict.ok:
        logger.info("audit chain verified: ok count=%s last_seq=%s", verdict.count, verdict.last_seq)
    else:
        logger.error("audit chain BROKEN at seq=%s: %s (checked %s)", verdict.first_broken_seq, verdict.reason, verdict.count)
    return check


def audit_chain_verify_now(*, actor_id: str) -> AuditChainCheck:
    """The console's "verify now": the check ``verify_audit_chain`` runs, stored, and audited as who asked."""
    check = audit_chain_check_run(source=CheckSource.ADMIN)
    audit_record(actor_type=ActorType.ADMIN, actor_id=actor_id, action="audit.chain_verified", obj=check,
                 data={"ok": check.ok, "count": check.count, "last_seq": check.last_seq,
                       "first_broken_seq": check.first_broken_seq, "reason": check.reason, "duration_ms": check.duration_ms})
    return check
