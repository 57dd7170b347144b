"""An exit order's fill event closes its managed position at once (sellbot/fill_events.exit_fill_close),
through the listener's own handling of an event (lifecycle/handling.update_handle) and the ledger."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.broker.contract import TradeUpdate
from accounts.broker.convert import order_from_json
from lifecycle.handling import update_handle
from sellbot.models import ManagedPosition, PositionStatus

from .factories import ManagedPositionFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2030, 3, 4, 15, 0, 0, 123456, tzinfo=UTC)


def _exit_fill(position: ManagedPosition, *, filled: str, status: str, execution_id: str) -> TradeUpdate:
    order = {"id": f"b-{position.pk}", "client_order_id": position.exit_client_order_id, "symbol": position.symbol,
             "asset_class": "us_option", "side": "sell", "type": "limit", "time_in_force": "day", "status": status, "qty": str(position.qty),
             "filled_qty": filled, "filled_avg_price": "2.30", "limit_price": "2.30", "created_at": "2030-03-04T15:00:00.000001Z",
             "submitted_at": "2030-03-04T15:00:00.000001Z"}
    return TradeUpdate(event="fill" if status == "filled" else "partial_fill", order=order_from_json(order), timestamp=T0,
                       received_at=T0 + timedelta(milliseconds=3), qty=Decimal(filled), price=Decimal("2.30"),
                       position_qty=position.qty - Decimal(filled), execution_id=execution_id)


def _closing(**values) -> ManagedPosition:
    position = ManagedPositionFactory(status=PositionStatus.CLOSING, exit_reason="take_profit", **values)
    position.exit_client_order_id = f"sb-{position.pk}-1"
    position.save(update_fields=["exit_client_order_id"])
    return position


def test_an_exit_that_fills_the_whole_position_closes_it_with_its_reason():
    position = _closing(qty=Decimal(2))
    update_handle(account=position.account, update=_exit_fill(position, filled="1", status="partially_filled", execution_id="e1"))
    position.refresh_from_db()
    assert position.status == PositionStatus.CLOSING  # a partial fill leaves it to the sweep

    update_handle(account=position.account, update=_exit_fill(position, filled="2", status="filled", execution_id="e2"))
    position.refresh_from_db()
    assert position.status == PositionStatus.CLOSED and position.exit_reason == "take_profit" and position.closed_at is not None


def test_a_fill_of_an_order_that_is_no_exit_leaves_positions_alone():
    position = _closing(qty=Decimal(2))
    other = ManagedPositionFactory(account=position.account, status=PositionStatus.CLOSING, exit_client_order_id="sb-999-1")
    update_handle(account=position.account, update=_exit_fill(other, filled="2", status="filled", execution_id="e3"))
    position.refresh_from_db()
    assert position.status == PositionStatus.CLOSING
