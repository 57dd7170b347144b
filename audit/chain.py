"""The hash chain of ``AuditEvent`` rows: canonical JSON, hashing and verification.

Canonical JSON of a row (what ``hash`` covers, together with ``prev_hash``)
---------------------------------------------------------------------------
``hash = sha256((prev_hash + canonical_json(row)).encode("utf-8")).hexdigest()`` where
``prev_hash`` is the previous row's ``hash`` (64 lowercase hex digits; the first row uses
``GENESIS_HASH``, 64 zeros) and ``canonical_json(row)`` is the JSON object with exactly these keys:

======================  =====================================================================
``seq``                 integer; 1 for the first row, then +1 for each row (no gaps)
``at``                  string, UTC with microseconds and a ``Z``: ``2026-11-21T12:32:05.123456Z``
``actor_type``          string: ``user``, ``admin``, ``system`` or ``sellbot``
``actor_id``            string (may be empty)
``action``              string, dotted (``order.submitted``)
``account``             integer primary key of ``accounts.AlpacaAccount``, or ``null``
``object_type``         string (may be empty)
``object_id``           string (may be empty)
``data``                the JSON value as stored (see below)
======================  =====================================================================

Serialisation: ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)`` encoded as UTF-8 — keys sorted by code point at every depth, no whitespace,
non-ASCII characters written as themselves.

``data`` is normalised *before* it is stored, so that what is hashed is exactly what the database
gives back (PostgreSQL ``jsonb`` and SQLite JSON text alike):

- ``Decimal`` → its string (``Decimal("1.50")`` → ``"1.50"``); ``datetime`` → the ``at`` format above
  (naive datetimes are taken as UTC); ``date``/``time`` → ISO 8601 string; ``UUID`` → string;
  tuples → lists; dict keys → strings. Anything else that is not JSON is refused (``TypeError``).
- A float with an integral value is rendered as that integer (``1.0`` → ``1``): ``jsonb`` prints
  ``1e16`` as ``10000000000000000``, which reads back as an int. Other floats use Python's shortest
  round-trip ``repr``. NaN and infinities are refused (``ValueError``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

GENESIS_HASH = "0" * 64
HASHED_FIELDS = ("seq", "at", "actor_type", "actor_id", "action", "account", "object_type", "object_id", "data")


def format_at(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalise_data(value):
    """Return ``value`` as plain JSON types, following the rules in this module's docstring."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("audit data cannot hold NaN or infinity")
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(key): normalise_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise_data(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return format_at(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"audit data cannot hold {type(value).__name__}")


def _canonical_value(value):
    # Values read back from the database: floats with integral values print as ints (see above).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _canonical_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical_value(item) for item in value]
    return value


def canonical_json(*, seq: int, **row) -> str:
    return canonical_json_before_seq(**row) + f"{seq}}}"


def canonical_data_json(data, *, normalised: bool = False) -> str:
    """``data`` in the canonical serialisation: also what the writer stores, so the canonical row below
    is built around it instead of serialising the data twice. ``normalised``: ``data`` comes from
    ``normalise_data`` (integral floats are already ints), so the walk for them is skipped."""
    return json.dumps(data if normalised else _canonical_value(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def canonical_json_before_seq(*, data, **row) -> str:
    """The canonical JSON up to the value of ``seq``, its last key in sorted order: PostgreSQL
    appends the seq it takes under the head lock, and ``}`` (audit.services)."""
    return canonical_row_before_seq(data_json=canonical_data_json(data), **row)


def canonical_row_before_seq(*, at: dt.datetime, actor_type: str, actor_id: str, action: str, account: int | None,
                             object_type: str, object_id: str, data_json: str) -> str:
    """``canonical_json_before_seq`` for data already serialised by ``canonical_data_json``: the keys in
    sorted order (account, action, actor_id, actor_type, at, data, object_id, object_type, seq)."""
    def dumps(value) -> str:
        return json.dumps(value, ensure_ascii=False)

    return (f'{{"account":{dumps(account)},"action":{dumps(action)},"actor_id":{dumps(actor_id)},'
            f'"actor_type":{dumps(actor_type)},"at":"{format_at(at)}","data":{data_json},'
            f'"object_id":{dumps(object_id)},"object_type":{dumps(object_type)},"seq":')


def compute_hash(prev_hash: str, **row) -> str:
    return hashlib.sha256((prev_hash + canonical_json(**row)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    count: int  # rows checked
    last_seq: int | None
    first_broken_seq: int | None = None
    reason: str = ""


VERIFY_CHUNK = 5000


def verify_chain(*, since: int | None = None) -> ChainVerdict:
    """Walk the chain in ``seq`` order, streaming, and stop at the first broken row.

    With ``since``, rows before it are trusted: the walk starts from the stored hash of ``since - 1``.
    """
    from audit.models import AuditChainHead, AuditEvent

    start = max(since or 1, 1)
    expected_prev = GENESIS_HASH
    if start > 1:
        anchor = AuditEvent.objects.filter(seq=start - 1).values_list("hash", flat=True).first()
        if anchor is None:
            return ChainVerdict(False, 0, None, start - 1, f"seq {start - 1} (the row before --since) is missing")
        expected_prev = anchor

    expected_seq, count, last_seq = start, 0, None
    for seq, at, actor_type, actor_id, action, account, object_type, object_id, data, prev_hash, stored_hash in _rows(AuditEvent, start):
        if seq != expected_seq:
            reason = f"seq {expected_seq} is missing (next row is seq {seq})"
            return ChainVerdict(False, count, last_seq, expected_seq, reason)
        if prev_hash != expected_prev:
            return ChainVerdict(False, count, last_seq, seq, f"prev_hash does not match the hash of seq {seq - 1}")
        actual = compute_hash(prev_hash, seq=seq, at=at, actor_type=actor_type, actor_id=actor_id, action=action,
                              account=account, object_type=object_type, object_id=object_id, data=data)
        if actual != stored_hash:
            return ChainVerdict(False, count, last_seq, seq, "hash does not match the row's contents (row altered)")
        expected_prev, expected_seq, last_seq = stored_hash, seq + 1, seq
        count += 1

    head = AuditChainHead.objects.filter(pk=AuditChainHead.SINGLETON).values_list("seq", "hash").first()
    walked_to = last_seq if last_seq is not None else start - 1
    if head is not None and head[0] > walked_to:
        return ChainVerdict(False, count, last_seq, walked_to + 1,
                            f"the chain head records seq {head[0]} but the last event is seq {walked_to} (rows removed at the end)")
    if head is not None and last_seq is not None and head[0] == last_seq and head[1] != expected_prev:
        return ChainVerdict(False, count, last_seq, last_seq, "the chain head's hash differs from the last event's hash")
    return ChainVerdict(True, count, last_seq)


def _rows(model, start: int) -> Iterator[tuple]:
    fields = ("seq", "at", "actor_type", "actor_id", "action", "account_id", "object_type", "object_id", "data", "prev_hash", "hash")
    return model.objects.filter(seq__gte=start).order_by("seq").values_list(*fields).iterator(chunk_size=VERIFY_CHUNK)
