"""The order ledger: trade-updates events into ``OrderEvent`` rows and their ``OrderRecord``
(docs/architecture.md, "Order lifecycle").

Idempotence: a fill counts once, by its execution id and by the order's cumulative filled quantity (an
event whose cumulative fill the record already has is a duplicate, e.g. a fill reconciliation already
recovered); other events count once per order and event (``pending_cancel``, ``pending_replace`` and ``done_for_day``, which
may repeat, once per broker timestamp). Each event, its record's update and its audit event commit in one
transaction (the listener commits a burst of events, of many accounts, as one); a fill then enqueues the
account's balance refresh.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from django.db import connection, connections, transaction
from django.utils import timezone

from accounts.balance_refresh import balance_refresh_request
from accounts.broker import BrokerOrder
from accounts.broker.contract import TradeUpdate
from accounts.models import AlpacaAccount
from audit.services import audit_record, audit_record_many
from opitios.db import fetchone_prepared, insert_rows_statement, insert_statement, inserted

from .models import FINAL_STATUSES, OPEN_ORDER, OrderEvent, OrderRecord, Outcome, Source

logger = logging.getLogger("opitios.trading.ledger")

FILL_EVENTS = ("fill", "partial_fill")
REPEATABLE_EVENTS = ("pending_cancel", "pending_replace", "done_for_day")  # done_for_day: once per session
AUDIT_ACTIONS = {
    "fill": "order.filled",
    "partial_fill": "order.partially_filled",
    "canceled": "order.canceled",
    "expired": "order.expired",
    "replaced": "order.replaced",
}
_US = "%Y-%m-%dT%H:%M:%S.%fZ"
# One record's events written with it in one statement up to this many (a text per number: psycopg prepares each).
MAX_ONE_STATEMENT_ROWS = 4
# Every field ``_apply`` may change: a batch writes them once per record, whatever its events changed.
RECORD_FIELDS = ["broker_status", "broker_order_id", "filled_qty", "filled_avg_price", "filled_at", "first_fill_ms", "last_fill_ms"]


@dataclass(frozen=True)
class Recorded:
    """What one update did: ``event`` is None for a duplicate; ``filled`` is the quantity it added."""

    record: OrderRecord
    event: OrderEvent | None
    filled: Decimal = Decimal(0)

    @property
    def duplicate(self) -> bool:
        return self.event is None


def _key(order: BrokerOrder, event: str, at: datetime, execution_id: str) -> str:
    if execution_id:
        return f"exec:{execution_id}"
    if event in FILL_EVENTS:
        return f"{order.id}:{event}:{order.filled_qty.normalize()}"
    if event in REPEATABLE_EVENTS:
        return f"{order.id}:{event}:{at.strftime(_US)}"
    return f"{order.id}:{event}"


def _record_for(account: AlpacaAccount, order: BrokerOrder, at: datetime) -> OrderRecord:
    """The order's record, locked; an order the gateway never placed gets one of source ``external``."""
    records = OrderRecord.objects.select_for_update().filter(account=account)
    record = records.filter(broker_order_id=order.id).order_by("-is_current").first()
    if record is None and order.client_order_id:
        record = records.filter(client_order_id=order.client_order_id, is_current=True).first()
    if record is not None:
        return record
    record = _external(account, order, at)
    record.save(force_insert=True)
    return record


def _external(account: AlpacaAccount, order: BrokerOrder, at: datetime) -> OrderRecord:
    return OrderRecord(
        account=account, account_type=account.account_type or "", source=Source.EXTERNAL, client_order_id=order.client_order_id,
        broker_order_id=order.id, symbol=order.symbol, asset_class=order.asset_class, side=order.side, order_type=order.type,
        time_in_force=order.time_in_force, qty=order.qty, notional=order.notional, limit_price=order.limit_price,
        stop_price=order.stop_price, extended_hours=order.extended_hours, outcome=Outcome.ACCEPTED, broker_status=order.status,
        received_at=order.created_at or order.submitted_at or at, submitted_at=order.submitted_at or order.created_at,
        order_class=order.order_class or "simple", trail_price=order.trail_price, trail_percent=order.trail_percent,
        # a replacement made outside the gateway is linked to the order it replaced, as the gateway's own are
        action="replace" if order.replaces else "place", replaces_order_id=order.replaces or "",
        replaces=OrderRecord.objects.filter(account=account, broker_order_id=order.replaces).order_by("-received_at").first()
        if order.replaces else None,
    )


@lru_cache(maxsize=256)
def _lock_sql(alias: str, accounts: int, broker_ids: int, client_ids: int) -> str:
    """The batch's locking query for its numbers of accounts, broker ids and client order ids, built once
    (the ORM's ``Q`` and compiler were a fifth of the listener's CPU: docs/performance.md)."""
    connection = connections[alias]
    meta, qn = OrderRecord._meta, connection.ops.quote_name

    def marks(n: int) -> str:
        return ", ".join(["%s"] * n)

    match = f"{qn('broker_order_id')} IN ({marks(broker_ids)})"
    if client_ids:
        match = f"({match} OR ({qn('is_current')} AND {qn('client_order_id')} IN ({marks(client_ids)})))"
    return (f"SELECT {', '.join(qn(f.column) for f in meta.concrete_fields)} FROM {qn(meta.db_table)} "  # noqa: S608 - identifiers from _meta
            f"WHERE {qn('account_id')} IN ({marks(accounts)}) AND {match} ORDER BY {qn('is_current')}, {qn(meta.pk.column)}"
            + (" FOR UPDATE" if connection.features.has_select_for_update else ""))


def _records_for_batch(items: list[tuple[AlpacaAccount, TradeUpdate]]) -> dict[tuple[int, str], OrderRecord]:
    """``_record_for`` for every order of a batch in two statements (lock by broker id or by client order
    id, in one round trip; create the external ones), keyed by (account pk, broker order id)."""
    orders = {(a.pk, u.order.id): (a, u) for a, u in items}
    pks = sorted({a.pk for a, _ in items})
    broker_ids = sorted({o for _, o in orders})
    client_ids = sorted({u.order.client_order_id for _, u in orders.values() if u.order.client_order_id})
    sql = _lock_sql(connection.alias, len(pks), len(broker_ids), len(client_ids))
    by_broker: dict[tuple[int, str], OrderRecord] = {}
    by_client: dict[tuple[int, str], OrderRecord] = {}
    # The current one last: it wins, as ``_record_for``'s order_by; the first current one by client order id.
    for record in OrderRecord.objects.raw(sql, [*pks, *broker_ids, *client_ids]):
        if (record.account_id, record.broker_order_id) in orders:
            by_broker[(record.account_id, record.broker_order_id)] = record
        if record.is_current and record.client_order_id:
            by_client.setdefault((record.account_id, record.client_order_id), record)
    found = dict(by_broker)
    for key, (account, update) in orders.items():
        if key not in found and update.order.client_order_id:
            record = by_client.get((account.pk, update.order.client_order_id))
            if record is not None:
                found[key] = record
    missing = {key: _external(a, u.order, u.timestamp) for key, (a, u) in orders.items() if key not in found}
    OrderRecord.objects.bulk_create(missing.values())
    return found | missing


def _ms(start: datetime | None, end: datetime) -> float | None:
    return round((end - start).total_seconds() * 1000, 3) if start else None


def _apply(record: OrderRecord, order: BrokerOrder, event: str, at: datetime) -> list[str]:
    """The record's broker-side fields after the event; the names of the fields it changed."""
    changed = ["broker_status"]
    record.broker_status = order.status
    if not record.broker_order_id:
        record.broker_order_id, changed = order.id, [*changed, "broker_order_id"]
    if event in FILL_EVENTS:
        record.filled_qty, record.filled_avg_price = order.filled_qty, order.filled_avg_price
        started = record.submitted_at or order.submitted_at
        if record.first_fill_ms is None:
            record.first_fill_ms = _ms(started, at)
        record.last_fill_ms = _ms(started, at)
        if order.status == "filled":
            record.filled_at = order.filled_at or at
        changed += ["filled_qty", "filled_avg_price", "filled_at", "first_fill_ms", "last_fill_ms"]
    return changed


def _event_row(account: AlpacaAccount, record: OrderRecord, order: BrokerOrder, *, key: str, event: str, at: datetime,
               received_at: datetime, qty, price, position_qty, execution_id: str, reconciled: bool) -> OrderEvent:
    return OrderEvent(
        account=account, record=record, broker_order_id=order.id, client_order_id=order.client_order_id, event=event,
        symbol=order.symbol, side=order.side, order_status=order.status, qty=qty, price=price, position_qty=position_qty,
        order_filled_qty=order.filled_qty, execution_id=execution_id, broker_at=at, received_at=received_at,
        reconciled=reconciled, dedupe_key=key,
    )


def _audit_note(audits: list[dict], account: AlpacaAccount, record: OrderRecord, order: BrokerOrder, *, event: str, at: datetime,
                qty, price, execution_id: str, reconciled: bool, **_) -> None:
    """The event's audit, for the caller to append last: the chain head is then locked only at the end of
    the transaction, after every record lock (the order the web's own writes take them in)."""
    action = AUDIT_ACTIONS.get(event)
    if action:
        audits.append({"actor_type": "system", "actor_id": "trade_updates", "action": action, "account": account, "obj": record, "data": {
            "broker_order_id": order.id, "client_order_id": order.client_order_id, "symbol": order.symbol, "side": order.side,
            "qty": qty, "price": price, "filled_qty": order.filled_qty, "filled_avg_price": order.filled_avg_price,
            "status": order.status, "execution_id": execution_id, "broker_at": at.strftime(_US), "reconciled": reconciled,
        }})


def _write(account: AlpacaAccount, order: BrokerOrder, **fields) -> Recorded:
    event, at = fields["event"], fields["at"]
    audits: list[dict] = []
    with transaction.atomic():
        record = _record_for(account, order, at)
        key = _key(order, event, at, fields["execution_id"])
        if event in FILL_EVENTS and order.filled_qty <= record.filled_qty or OrderEvent.objects.filter(dedupe_key=key).exists():
            return Recorded(record, None)
        added = order.filled_qty - record.filled_qty if event in FILL_EVENTS else Decimal(0)
        row = _event_row(account, record, order, key=key, **fields)
        row.save(force_insert=True)
        record.save(update_fields=_apply(record, order, event, at))
        _audit_note(audits, account, record, order, **fields)
        for audit in audits:
            audit_record(**audit)
        if added > 0:
            # The same coalesced, off-path refresh as an accepted order's (accounts/balance_refresh.py).
            transaction.on_commit(lambda pk=account.pk: balance_refresh_request(account_pk=pk))
    return Recorded(record, row, added)


def _update_fields(update: TradeUpdate) -> dict:
    return {"event": update.event, "at": update.timestamp, "received_at": update.received_at, "qty": update.qty,
            "price": update.price, "position_qty": update.position_qty, "execution_id": update.execution_id, "reconciled": False}


def trade_update_record(*, account: AlpacaAccount, update: TradeUpdate) -> Recorded:
    """One streamed event into the ledger (a duplicate records nothing)."""
    return _write(account, update.order, **_update_fields(update))


def _records_update(records: list[OrderRecord]) -> None:
    """The batch's records, ``RECORD_FIELDS`` only: on PostgreSQL one ``UPDATE ... FROM (VALUES ...)``
    (``bulk_update``'s CASE per field cost ten times the CPU), elsewhere one UPDATE each."""
    if not records:
        return
    if connection.vendor != "postgresql":
        for record in records:
            record.save(update_fields=RECORD_FIELDS)
        return
    fields = _update_fields_of(connection.alias)
    sql = _records_update_sql(connection.alias, len(records))
    params = [f.get_db_prep_save(getattr(record, f.attname), connection) for record in records for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _events_and_record_write(rows: list[OrderEvent], record: OrderRecord) -> None:
    """One record's events' INSERT and its ``_records_update`` in one statement (PostgreSQL), prepared."""
    if len(rows) == 1:
        insert_sql, insert_params, _ = insert_statement(rows[0], using=connection.alias)
    else:
        insert_sql, insert_params, _ = insert_rows_statement(rows, using=connection.alias)
    params = [f.get_db_prep_save(getattr(record, f.attname), connection) for f in _update_fields_of(connection.alias)]
    sql = _events_and_record_sql(connection.alias, insert_sql, len(rows))
    pks = fetchone_prepared(connection, sql, [*insert_params, *params])[0]
    # A multi-row INSERT takes its sequence values in the order of its rows.
    for row, pk in zip(rows, sorted(pks) if len(rows) > 1 else [pks], strict=True):
        inserted(row, pk, using=connection.alias)


@lru_cache(maxsize=8)
def _events_and_record_sql(alias: str, insert_sql: str, rows: int) -> str:
    pk = OrderEvent._meta.pk.column
    returned = f"array_agg({pk})" if rows > 1 else pk
    return f"WITH e AS ({insert_sql}) {_records_update_sql(alias, 1)} RETURNING (SELECT {returned} FROM e)"  # noqa: S608 - built from _meta


@lru_cache(maxsize=8)
def _update_fields_of(alias: str) -> tuple:
    return (OrderRecord._meta.pk, *(OrderRecord._meta.get_field(name) for name in RECORD_FIELDS))


@lru_cache(maxsize=64)
def _records_update_sql(alias: str, n: int) -> str:
    """``_records_update``'s statement for ``n`` records, built once (PostgreSQL)."""
    fields = _update_fields_of(alias)
    row = "(" + ", ".join(f"%s::{f.db_type(connections[alias])}" for f in fields) + ")"
    columns = [f.column for f in fields]
    table, pk = OrderRecord._meta.db_table, columns[0]
    return " ".join([  # noqa: S608 - identifiers from _meta, values as parameters
        f"UPDATE {table} AS r SET", ", ".join(f"{c} = v.{c}" for c in columns[1:]),
        f"FROM (VALUES {', '.join([row] * n)}) AS v({', '.join(columns)}) WHERE r.{pk} = v.{pk}",
    ])


def trade_updates_record(items: list[tuple[AlpacaAccount, TradeUpdate]]) -> list[Recorded]:
    """Streamed events of any accounts into the ledger in one transaction, in the order given (an account's
    events in its stream's order), in a fixed number of statements plus one audit append per audited event:
    a burst costs one commit and a few round trips, not a transaction of eight statements per event. The
    same rules as ``trade_update_record``, applied in memory to the locked records. Any failure rolls the
    whole batch back and raises; the caller then writes the events one by one (lifecycle/handling.py)."""
    audits: list[dict] = []
    done: list[Recorded] = []
    with transaction.atomic():
        keys = [_key(u.order, u.event, u.timestamp, u.execution_id) for _, u in items]
        # Looked up before the records are locked, so the lock is held for one round trip less (the gateway's
        # outcome waits on it), and only for the events that are duplicates by key alone: a fill is one by
        # its cumulative quantity, read under the lock (a fill adding quantity cannot have been recorded).
        # A concurrent writer of the same key fails the batch on the unique key: then the one-by-one path.
        by_key = [key for (_, u), key in zip(items, keys, strict=True) if u.event not in FILL_EVENTS]
        seen = set(OrderEvent.objects.filter(dedupe_key__in=by_key).values_list("dedupe_key", flat=True)) if by_key else set()
        records = _records_for_batch(items)
        rows, touched = [], {}
        for (account, update), key in zip(items, keys, strict=True):
            order, event, record = update.order, update.event, records[(account.pk, update.order.id)]
            if event in FILL_EVENTS and order.filled_qty <= record.filled_qty or key in seen:
                done.append(Recorded(record, None))
                continue
            seen.add(key)
            added = order.filled_qty - record.filled_qty if event in FILL_EVENTS else Decimal(0)
            row = _event_row(account, record, order, key=key, **_update_fields(update))
            rows.append(row)
            _apply(record, order, event, update.timestamp)
            touched[record.pk] = record
            _audit_note(audits, account, record, order, **_update_fields(update))
            if added > 0:
                transaction.on_commit(lambda pk=account.pk: balance_refresh_request(account_pk=pk))
            done.append(Recorded(record, row, added))
        if 1 <= len(rows) <= MAX_ONE_STATEMENT_ROWS and len(touched) == 1 and connection.vendor == "postgresql":
            # The common batches: one event, or a market order's ``new`` and ``fill`` together (most of
            # bench.order_overhead's batches): the events' INSERT and their record's UPDATE as one
            # prepared statement, a round trip less while the record is locked, and no ORM bulk_create.
            _events_and_record_write(rows, *touched.values())
        else:
            OrderEvent.objects.bulk_create(rows)
            _records_update(list(touched.values()))
        audit_record_many(audits)
    return done


def _updated_at(order: BrokerOrder, fallback: datetime) -> datetime:
    raw = order.raw.get("updated_at")
    if raw:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return fallback


def order_reconcile(*, account: AlpacaAccount, order: BrokerOrder) -> list[Recorded]:
    """Events the stream did not deliver (a gap), recovered from the order's REST state: its creation,
    the fill it has beyond what the ledger holds (one event for the difference, at the average price
    that makes the totals agree) and its final status. Marked ``reconciled``; nothing twice."""
    now = timezone.now()
    done: list[Recorded] = []
    seen = set(OrderEvent.objects.filter(broker_order_id=order.id).values_list("event", flat=True))
    if not seen:
        done.append(_write(account, order, event="new", at=order.submitted_at or order.created_at or now, received_at=now, qty=None,
                           price=None, position_qty=None, execution_id="", reconciled=True))
    record = OrderRecord.objects.filter(account=account, broker_order_id=order.id).first()
    had_qty = record.filled_qty if record else Decimal(0)
    had_avg = (record.filled_avg_price if record else None) or Decimal(0)
    if order.filled_qty > had_qty and order.filled_avg_price is not None:
        qty = order.filled_qty - had_qty
        price = ((order.filled_avg_price * order.filled_qty - had_avg * had_qty) / qty).quantize(Decimal("0.000001"))
        event = "fill" if order.status == "filled" else "partial_fill"
        at = order.filled_at if event == "fill" and order.filled_at else _updated_at(order, now)
        done.append(_write(account, order, event=event, at=at, received_at=now, qty=qty, price=price, position_qty=None,
                           execution_id="", reconciled=True))
    if order.status in FINAL_STATUSES and order.status != "filled" and order.status not in seen:
        at = order.canceled_at if order.status == "canceled" and order.canceled_at else _updated_at(order, now)
        done.append(_write(account, order, event=order.status, at=at, received_at=now, qty=None, price=None, position_qty=None,
                           execution_id="", reconciled=True))
    return done


def open_order_ids(*, account: AlpacaAccount) -> list[str]:
    """Broker ids of the account's orders the ledger still has as open (checked one by one on reconcile)."""
    return list(OrderRecord.objects.filter(OPEN_ORDER, account=account).exclude(broker_order_id="")
                .values_list("broker_order_id", flat=True)[:500])


def last_event_at(*, account: AlpacaAccount) -> datetime | None:
    return OrderEvent.objects.filter(account=account).order_by("-broker_at").values_list("broker_at", flat=True).first()

