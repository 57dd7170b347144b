"""The placement's outcome write (trading/outcome.py) never overwrites a broker status a fill event
already recorded in the ledger (trading/ledger.py): the event can reach the ledger first."""
from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections

from accounts.broker.contract import TradeUpdate
from accounts.broker.convert import order_from_json
from audit.chain import verify_chain
from audit.models import AuditEvent
from audit.services import audit_record
from tests.audit.conftest import requires_postgres
from trading import ledger
from trading.models import OrderRecord, Outcome
from trading.outcome import order_outcome_write

pytestmark = pytest.mark.django_db

T0 = datetime(2030, 3, 4, 15, 0, 0, 123456, tzinfo=UTC)


def _pending(account, client_order_id: str) -> OrderRecord:
    return OrderRecord.objects.create(account=account, account_type=account.account_type, source="api", user_id="u", symbol="MSFT",
                                      asset_class="us_equity", side="buy", order_type="market", time_in_force="day", qty=Decimal(1),
                                      client_order_id=client_order_id, received_at=T0)


def _accept(record: OrderRecord, account, status: str) -> None:
    record.outcome, record.http_status, record.broker_order_id, record.broker_status = Outcome.ACCEPTED, 201, f"b-{record.client_order_id}", status
    order_outcome_write(record, account=account, check=None, outcome=Outcome.ACCEPTED, audit_data={"client_order_id": record.client_order_id},
                        actor_type="user")


def test_a_fill_recorded_before_the_outcome_keeps_its_status(demo_accounts):
    account = demo_accounts["account_001"]
    record = _pending(account, "c-1")
    order = order_from_json({"id": "b-c-1", "client_order_id": "c-1", "symbol": "MSFT", "asset_class": "us_equity", "side": "buy",
                             "type": "market", "time_in_force": "day", "status": "filled", "qty": "1", "filled_qty": "1",
                             "filled_avg_price": "1.00", "created_at": "2030-03-04T15:00:00.000001Z"})
    ledger.trade_update_record(account=account, update=TradeUpdate(
        event="fill", order=order, timestamp=T0, received_at=T0 + timedelta(milliseconds=1), qty=Decimal(1), price=Decimal(1),
        position_qty=Decimal(1), execution_id="x-1"))
    assert OrderRecord.objects.get(pk=record.pk).broker_status == "filled"

    _accept(record, account, "accepted")
    stored = OrderRecord.objects.get(pk=record.pk)
    assert stored.broker_status == "filled" and stored.outcome == Outcome.ACCEPTED and stored.http_status == 201


def test_without_an_event_the_outcome_writes_the_answer_status(demo_accounts):
    account = demo_accounts["account_001"]
    record = _pending(account, "c-2")
    _accept(record, account, "accepted")
    assert OrderRecord.objects.get(pk=record.pk).broker_status == "accepted"


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_the_outcome_waits_for_a_ledger_batch_holding_its_fill_without_a_deadlock(demo_accounts, monkeypatch, caplog):
    """The listener's batch locks the record, then the audit head; the outcome's statement takes them in
    the same order, so it waits for the batch instead of holding the head the batch needs next."""
    account = demo_accounts["account_001"]
    audit_record(actor_type="system", actor_id="test", action="test.chain_started")  # the head exists, as it always does once made
    record = _pending(account, "c-3")
    order = order_from_json({"id": "b-c-3", "client_order_id": "c-3", "symbol": "MSFT", "asset_class": "us_equity", "side": "buy",
                             "type": "market", "time_in_force": "day", "status": "filled", "qty": "1", "filled_qty": "1",
                             "filled_avg_price": "1.00", "created_at": "2030-03-04T15:00:00.000001Z"})
    connection.ensure_connection()
    web_pid = connection.connection.info.backend_pid
    record_locked = threading.Event()
    original = ledger.audit_record_many
    errors: list[BaseException] = []

    def audit_once_the_outcome_waits(events, **kwargs):
        record_locked.set()
        deadline = time.monotonic() + 30
        with connection.cursor() as cursor:  # this thread's own connection
            while True:
                cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [web_pid])
                if cursor.fetchone()[0] == "Lock":
                    break
                assert time.monotonic() < deadline, "the outcome's statement never waited for the record"
                time.sleep(0.01)
        return original(events, **kwargs)

    monkeypatch.setattr(ledger, "audit_record_many", audit_once_the_outcome_waits)

    def listener_batch() -> None:
        try:
            ledger.trade_updates_record([(account, TradeUpdate(
                event="fill", order=order, timestamp=T0, received_at=T0, qty=Decimal(1), price=Decimal(1), position_qty=Decimal(1),
                execution_id="x-3"))])
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    batch = threading.Thread(target=listener_batch)
    batch.start()
    assert record_locked.wait(30)
    with caplog.at_level(logging.WARNING, logger="opitios.trading.orders"):
        _accept(record, account, "accepted")
    batch.join(30)
    assert not errors
    assert not [m for m in caplog.messages if "not written yet" in m]  # the deadlock victim's retry
    stored = OrderRecord.objects.get(pk=record.pk)
    assert stored.broker_status == "filled" and stored.outcome == Outcome.ACCEPTED and stored.filled_qty == Decimal(1)
    actions = list(AuditEvent.objects.filter(object_id=str(record.pk)).order_by("seq").values_list("action", flat=True))
    assert actions == ["order.filled", "order.submitted"]
    assert verify_chain().ok
