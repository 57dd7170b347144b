"""The placement's outcome write (trading/outcome.py) never overwrites a broker status a fill event
already recorded in the ledger (trading/ledger.py): the event can reach the ledger first."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.broker.contract import TradeUpdate
from accounts.broker.convert import order_from_json
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
