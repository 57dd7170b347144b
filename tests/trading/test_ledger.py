"""The order ledger from trade updates (trading/ledger.py) as pure logic: events built as the stream
delivers them (no broker involved), into OrderEvent, OrderRecord and the audit chain; and the compliance
admin's views of them. The stream itself is driven end to end in tests/lifecycle/."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.broker.contract import TradeUpdate
from accounts.broker.convert import order_from_json
from audit.models import AuditEvent
from trading import ledger
from trading.models import OrderEvent, OrderRecord, Source

pytestmark = pytest.mark.django_db

T0 = datetime(2030, 3, 4, 15, 0, 0, 123456, tzinfo=UTC)


def _order(status: str, filled: str = "0", avg: str | None = None, **extra) -> dict:
    return {"id": "b-1", "client_order_id": "ext-1", "symbol": "MSFT", "asset_class": "us_equity", "side": "buy", "type": "limit",
            "time_in_force": "gtc", "status": status, "qty": "10", "filled_qty": filled, "filled_avg_price": avg, "limit_price": "1.00",
            "created_at": "2030-03-04T15:00:00.000001Z", "submitted_at": "2030-03-04T15:00:00.000001Z", **extra}


def _update(event: str, order: dict, at: datetime = T0, **execution) -> TradeUpdate:
    return TradeUpdate(event=event, order=order_from_json(order), timestamp=at, received_at=at + timedelta(milliseconds=3),
                       **{k: Decimal(v) if k != "execution_id" else v for k, v in execution.items()})


def test_every_event_type_and_partial_fills_summing(demo_accounts):
    account = demo_accounts["account_001"]
    steps = [
        _update("new", _order("new")),
        _update("partial_fill", _order("partially_filled", "4", "1.00"), T0 + timedelta(seconds=1), qty="4", price="1.00",
                position_qty="4", execution_id="x1"),
        _update("partial_fill", _order("partially_filled", "4", "1.00"), T0 + timedelta(seconds=1), qty="4", price="1.00",
                position_qty="4", execution_id="x1"),  # delivered twice
        _update("fill", _order("filled", "10", "0.982"), T0 + timedelta(seconds=2), qty="6", price="0.97", position_qty="10",
                execution_id="x2"),
    ]
    results = [ledger.trade_update_record(account=account, update=u) for u in steps]
    assert [r.duplicate for r in results] == [False, False, True, False]
    record = OrderRecord.objects.get()
    assert record.source == Source.EXTERNAL and record.broker_order_id == "b-1" and record.filled_qty == 10
    assert record.filled_avg_price == Decimal("0.982") and record.broker_status == "filled"
    assert record.first_fill_ms == pytest.approx(1123.455) and record.last_fill_ms == pytest.approx(2123.455)
    assert sum(e.qty for e in record.events.all() if e.qty) == record.filled_qty
    assert record.events.get(execution_id="x2").received_at - record.events.get(execution_id="x2").broker_at == timedelta(milliseconds=3)
    assert AuditEvent.objects.filter(action="order.partially_filled").count() == 1
    assert AuditEvent.objects.filter(action="order.filled", object_id=str(record.pk)).count() == 1

    for n, (event, status, action) in enumerate([("canceled", "canceled", "order.canceled"), ("expired", "expired", "order.expired"),
                                                 ("replaced", "replaced", "order.replaced"), ("rejected", "rejected", None),
                                                 ("pending_new", "pending_new", None)]):
        order = {**_order(status), "id": f"b-{event}", "client_order_id": f"c-{event}"}
        first = ledger.trade_update_record(account=account, update=_update(event, order, T0 + timedelta(seconds=n)))
        again = ledger.trade_update_record(account=account, update=_update(event, order, T0 + timedelta(seconds=n)))
        assert not first.duplicate and again.duplicate
        assert OrderRecord.objects.get(broker_order_id=f"b-{event}").broker_status == status
        if action:
            assert AuditEvent.objects.filter(action=action, object_id=str(first.record.pk)).count() == 1


def test_a_gateway_order_is_linked_not_duplicated(demo_accounts, config_file, world):
    from .conftest import client_for, token

    r = client_for(token()).post("/api/v1/stocks/order", {"symbol": "AAPL", "qty": "2", "side": "buy", "type": "market",
                                                          "time_in_force": "day", "client_order_id": "gw-1"}, format="json")
    assert r.status_code == 201
    record = OrderRecord.objects.get(client_order_id="gw-1")
    order = {**_order("filled", "2", "150.10"), "id": record.broker_order_id, "client_order_id": "gw-1", "symbol": "AAPL"}
    done = ledger.trade_update_record(account=demo_accounts["account_001"], update=_update(
        "fill", order, timezone_now(), qty="2", price="150.10", position_qty="2", execution_id="gw-x"))
    assert done.record.pk == record.pk and OrderRecord.objects.count() == 1
    record.refresh_from_db()
    assert record.source == Source.API and record.filled_qty == 2 and record.first_fill_ms >= 0


def timezone_now() -> datetime:
    from django.utils import timezone

    return timezone.now()


def test_reconciliation_adds_only_what_the_ledger_lacks(demo_accounts):
    account = demo_accounts["account_001"]
    ledger.trade_update_record(account=account, update=_update("new", _order("new")))
    ledger.trade_update_record(account=account, update=_update(
        "partial_fill", _order("partially_filled", "4", "1.00"), qty="4", price="1.00", position_qty="4", execution_id="x1"))
    later = order_from_json(_order("canceled", "10", "0.982", canceled_at="2030-03-04T15:00:09.000001Z",
                                   updated_at="2030-03-04T15:00:09.000001Z"))
    done = ledger.order_reconcile(account=account, order=later)
    assert [(r.event.event, r.event.qty) for r in done] == [("partial_fill", Decimal("6")), ("canceled", None)]
    assert done[0].event.price == Decimal("0.970000") and all(r.event.reconciled for r in done)
    assert ledger.order_reconcile(account=account, order=later) == []
    assert OrderRecord.objects.get().filled_qty == 10


def test_officer_sees_the_lifecycle_and_the_event_list(officer_client, demo_accounts):
    account = demo_accounts["account_001"]
    ledger.trade_update_record(account=account, update=_update("new", _order("new")))
    ledger.trade_update_record(account=account, update=_update(
        "fill", _order("filled", "10", "1.00"), T0 + timedelta(seconds=1), qty="10", price="1.00", position_qty="10", execution_id="x9"))
    record = OrderRecord.objects.get()
    page = officer_client.get(reverse("admin:trading_orderrecord_change", args=[record.pk])).content.decode()
    assert 'class="step-broker-new"' in page and 'class="step-broker-fill"' in page and "10 @ 1" in page and "position 10" in page

    url = reverse("admin:trading_orderevent_changelist")
    response = officer_client.get(url, {"event": "fill"})
    assert response.status_code == 200
    assert [e.execution_id for e in response.context["cl"].result_list] == ["x9"]
    assert [e.event for e in officer_client.get(url, {"q": "MSFT"}).context["cl"].result_list] == ["fill", "new"]
    export = officer_client.get(reverse("admin:trading_orderevent_export", args=["csv"]), {"event": "fill"})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert len(rows) == 2 and "x9" in rows[1]
    assert AuditEvent.objects.filter(action="admin.exported").exists()
    assert OrderEvent.objects.count() == 2


def test_an_external_order_with_a_long_client_order_id_is_kept_whole(demo_accounts):
    long_id = "dashboard-" + "x" * 118  # Alpaca allows 128 characters
    order = {**_order("new"), "id": "b-long", "client_order_id": long_id}
    done = ledger.trade_update_record(account=demo_accounts["account_001"], update=_update("new", order))
    assert done.record.client_order_id == long_id and done.record.source == Source.EXTERNAL
    assert OrderEvent.objects.get(broker_order_id="b-long").client_order_id == long_id


def test_open_order_ids_are_the_accepted_orders_whose_status_is_not_final(demo_accounts):
    """What reconcile re-checks one by one (read through the partial index order_record_open)."""
    account, other = demo_accounts["account_001"], demo_accounts["account_002"]

    def make(n: int, outcome: str, status: str, broker_id: str, acct=account) -> None:
        OrderRecord.objects.create(account=acct, account_type=acct.account_type, source=Source.API, client_order_id=f"open-{n}",
                                   symbol="AAPL", asset_class="us_equity", side="buy", order_type="limit", time_in_force="day",
                                   qty=Decimal(1), outcome=outcome, broker_status=status, broker_order_id=broker_id, received_at=T0)

    make(1, "accepted", "new", "bo-new")
    make(2, "accepted", "partially_filled", "bo-partial")
    make(3, "accepted", "done_for_day", "bo-dfd")  # resumes next session: still open
    for n, status in enumerate(sorted(ledger.FINAL_STATUSES), start=10):
        make(n, "accepted", status, f"bo-{status}")
    make(20, "rejected", "", "")
    make(21, "accepted", "new", "")  # no broker id: nothing to ask the broker about
    make(22, "accepted", "new", "bo-other", acct=other)
    assert sorted(ledger.open_order_ids(account=account)) == ["bo-dfd", "bo-new", "bo-partial"]


def _rows():
    events = sorted((e.broker_order_id, e.event, e.dedupe_key, e.qty, e.order_filled_qty) for e in OrderEvent.objects.all())
    records = sorted((r.broker_order_id, r.source, r.broker_status, r.filled_qty, r.filled_avg_price, r.first_fill_ms, r.last_fill_ms)
                     for r in OrderRecord.objects.all())
    audits = sorted((a.action, a.object_id != "") for a in AuditEvent.objects.filter(actor_id="trade_updates"))
    return events, records, audits


def _burst(accounts):
    """Two accounts' events as a stream delivers them, one order's events twice (a redelivery)."""
    a, b = accounts
    first, second = _order("new"), {**_order("new"), "id": "b-2", "client_order_id": "ext-2"}
    return [
        (a, _update("new", first)),
        (b, _update("new", second)),
        (a, _update("partial_fill", _order("partially_filled", "4", "1.00"), T0 + timedelta(seconds=1), qty="4", price="1.00",
                    execution_id="x1")),
        (a, _update("partial_fill", _order("partially_filled", "4", "1.00"), T0 + timedelta(seconds=1), qty="4", price="1.00",
                    execution_id="x1")),
        (b, _update("canceled", {**second, "status": "canceled"}, T0 + timedelta(seconds=1))),
        (a, _update("fill", _order("filled", "10", "0.982"), T0 + timedelta(seconds=2), qty="6", price="0.97", execution_id="x2")),
    ]


def test_a_batch_records_what_the_events_one_by_one_record(demo_accounts):
    """The listener's batch (one transaction, a fixed number of statements) against the single-event path."""
    from audit.chain import verify_chain

    accounts = demo_accounts["account_001"], demo_accounts["account_002"]
    one_by_one = [ledger.trade_update_record(account=acc, update=u) for acc, u in _burst(accounts)]
    expected = _rows()
    OrderEvent.objects.all().delete()
    OrderRecord.objects.all().delete()
    before = AuditEvent.objects.count()  # the chain is append-only: count the batch's own appends
    batched = ledger.trade_updates_record(list(_burst(accounts)))
    assert [r.duplicate for r in batched] == [r.duplicate for r in one_by_one] == [False, False, False, True, False, False]
    assert [r.filled for r in batched] == [Decimal(0), Decimal(0), Decimal(4), Decimal(0), Decimal(0), Decimal(6)]
    events, records, _ = _rows()
    assert (events, records) == expected[:2]
    assert AuditEvent.objects.count() - before == 3  # partially_filled, canceled, filled
    assert verify_chain().ok
    again = ledger.trade_updates_record(list(_burst(accounts)))  # a redelivered burst records nothing
    assert all(r.duplicate for r in again) and _rows()[:2] == expected[:2]


def test_a_failed_batch_is_written_one_by_one_and_fails_only_its_account(demo_accounts, monkeypatch):
    from lifecycle import handling

    a, b = demo_accounts["account_001"], demo_accounts["account_002"]
    good = _update("new", _order("new"))
    bad = _update("new", {**_order("new"), "id": "b-9", "client_order_id": "ext-9"})
    event_row = ledger._event_row

    def refuse(account, record, order, **fields):  # the database refusing this one event's row
        if order.id == "b-9":
            raise ValueError("refused")
        return event_row(account, record, order, **fields)

    monkeypatch.setattr(ledger, "_event_row", refuse)
    outcomes = handling.updates_handle([(a, [good]), (b, [bad])])
    assert outcomes[0] is None and isinstance(outcomes[1], Exception)
    assert list(OrderEvent.objects.values_list("broker_order_id", flat=True)) == ["b-1"]


def test_a_failing_sell_bot_step_after_the_batch_fails_only_its_account(demo_accounts, monkeypatch):
    from lifecycle import handling

    a, b = demo_accounts["account_001"], demo_accounts["account_002"]
    after_write = handling._after_write

    def refuse(account, recorded, order):
        if account == b:
            raise RuntimeError("position step failed")
        after_write(account, recorded, order)

    monkeypatch.setattr(handling, "_after_write", refuse)
    outcomes = handling.updates_handle([(b, [_update("new", {**_order("new"), "id": "b-9", "client_order_id": "ext-9"})]),
                                        (a, [_update("new", _order("new"))])])
    assert isinstance(outcomes[0], RuntimeError) and outcomes[1] is None
    assert OrderEvent.objects.count() == 2  # the ledger committed both; the stream of b reconnects and reconciles


def test_a_gateway_orders_new_and_fill_batches_in_few_statements(demo_accounts):
    """The listener's batch of one event (the common batch at a steady rate): on PostgreSQL a ``new`` is
    its duplicate lookup (before the record is locked), the lock, and the event with the record's update
    in one statement; a fill is the lock, the event with the record, and its audit append in one
    statement (no duplicate lookup: its cumulative quantity, read under the lock, decides). Elsewhere the
    event and the record take two, the audit three."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audit.chain import verify_chain
    from audit.services import audit_record

    account = demo_accounts["account_001"]
    audit_record(actor_type="system", actor_id="test", action="test.chain_started")
    ledger.trade_updates_record([(account, _update("new", {**_order("new"), "id": "b-0", "client_order_id": "ext-0"}))])
    ledger.trade_update_record(account=account, update=_update("pending_new", _order("pending_new")))  # the record exists

    def statements(update) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            assert not ledger.trade_updates_record([(account, update)])[0].duplicate
        sent = [q["sql"].split(" times: ")[-1] for q in queries]  # executemany is logged as "N times: ..."
        return [sql.split()[0] for sql in sent if not sql.startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"))]

    postgresql = connection.vendor == "postgresql"
    write = ["WITH"] if postgresql else ["INSERT", "UPDATE"]  # the event and its record, one statement
    assert statements(_update("new", _order("new"))) == ["SELECT", "SELECT", *write]
    fill = _update("fill", _order("filled", "10", "1.00"), T0 + timedelta(seconds=1), qty="10", price="1.00", execution_id="x1")
    audit = ["WITH"] if postgresql else ["SELECT", "INSERT", "UPDATE"]
    assert statements(fill) == ["SELECT", *write, *audit]
    assert ledger.trade_updates_record([(account, fill)])[0].duplicate
    record = OrderRecord.objects.get(broker_order_id="b-1")
    assert record.broker_status == "filled" and record.filled_qty == 10 and record.events.count() == 3
    assert AuditEvent.objects.filter(action="order.filled", object_id=str(record.pk)).count() == 1
    assert verify_chain().ok


def test_a_market_orders_new_and_fill_in_one_batch_take_the_same_few_statements(demo_accounts):
    """A market order's ``new`` and ``fill`` often share a batch (bench.order_overhead): on PostgreSQL its
    two events and the record's update are one statement, as one event's are."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audit.chain import verify_chain
    from audit.services import audit_record

    account = demo_accounts["account_001"]
    audit_record(actor_type="system", actor_id="test", action="test.chain_started")
    ledger.trade_updates_record([(account, _update("new", {**_order("new"), "id": "b-0", "client_order_id": "ext-0"}))])
    ledger.trade_update_record(account=account, update=_update("pending_new", _order("pending_new")))  # the record exists
    burst = [(account, _update("new", _order("new"))),
             (account, _update("fill", _order("filled", "10", "1.00"), T0 + timedelta(seconds=1), qty="10", price="1.00",
                               execution_id="x1"))]
    with CaptureQueriesContext(connection) as queries:
        done = ledger.trade_updates_record(burst)
    sent = [q["sql"].split(" times: ")[-1].split()[0] for q in queries]
    sent = [s for s in sent if s not in ("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT")]
    if connection.vendor == "postgresql":
        assert sent == ["SELECT", "SELECT", "WITH", "WITH"]  # duplicates, lock, events with the record, audit
    assert [d.duplicate for d in done] == [False, False] and done[0].event.pk < done[1].event.pk
    record = OrderRecord.objects.get(broker_order_id="b-1")
    stored = list(record.events.order_by("pk").values_list("pk", "event", "dedupe_key"))
    assert stored[1:] == [(done[0].event.pk, "new", "b-1:new"), (done[1].event.pk, "fill", "exec:x1")]
    assert record.broker_status == "filled" and record.filled_qty == 10 and record.filled_avg_price == Decimal("1.00")
    assert all(d.duplicate for d in ledger.trade_updates_record(burst))
    assert verify_chain().ok
