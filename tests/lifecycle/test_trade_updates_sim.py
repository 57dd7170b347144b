"""Trade updates end to end: alpacasim's /paper/stream -> the listener (a real websocket per account) ->
OrderEvent, OrderRecord, audit and the sell bot. Orders go through the trading API, or straight to alpacasim
(through the broker seam) as orders placed outside the gateway."""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import websockets

from accounts.broker import OrderRequest, ReplaceRequest, broker_for
from accounts.broker.trade_stream import TradeStream, stream_target
from audit.models import AuditEvent
from sellbot.models import AutoSellFill, ManagedPosition
from sellbot.services import AccountCheck, fills_absorb
from tests.audit.conftest import requires_postgres
from tests.helpers.sim_streams import wait_for
from tests.trading.conftest import client_for, token
from trading.models import OrderEvent, OrderRecord, Source

# The listener writes from its own threads while the test writes too: the in-memory SQLite test database
# (shared cache, table locks, no busy timeout) cannot take that, so these run in the PostgreSQL pass; the
# SQLite pass runs the listener as a process of the whole stack (tests/e2e/test_trade_updates_stack.py).
pytestmark = [pytest.mark.django_db(transaction=True), requires_postgres]


def _events(order_id: str) -> list[OrderEvent]:
    return list(OrderEvent.objects.filter(broker_order_id=order_id).order_by("broker_at", "pk"))


def _wait_event(order_id: str, event: str, timeout: float = 20.0) -> OrderEvent:
    return wait_for(lambda: OrderEvent.objects.filter(broker_order_id=order_id, event=event).first(), timeout=timeout,
                    what=f"{event} of {order_id} in the ledger")


def _limit(symbol: str, qty: str, price: str, coid: str, side: str = "buy") -> OrderRequest:
    return OrderRequest(symbol=symbol, side=side, type="limit", time_in_force="gtc", client_order_id=coid, qty=Decimal(qty),
                        limit_price=Decimal(price))


def _market(symbol: str, qty: str, coid: str, side: str = "buy") -> OrderRequest:
    return OrderRequest(symbol=symbol, side=side, type="market", time_in_force="day", client_order_id=coid, qty=Decimal(qty))


def test_gateway_order_fill_reaches_record_ledger_and_audit(listening):
    r = client_for(token()).post("/api/v1/stocks/order", {"symbol": "AAPL", "qty": "3", "side": "buy", "type": "market",
                                                          "time_in_force": "day", "client_order_id": "lc-1"}, format="json")
    assert r.status_code == 201, r.json()
    order_id = r.json()["id"]
    fill = _wait_event(order_id, "fill")
    record = OrderRecord.objects.get(client_order_id="lc-1")
    assert [e.event for e in _events(order_id)] == ["new", "fill"]
    assert fill.record_id == record.pk and fill.qty == 3 and fill.execution_id and not fill.reconciled
    assert fill.broker_at.microsecond or fill.broker_at.second  # the broker's own timestamp, kept to the µs
    assert fill.received_at >= fill.broker_at
    wait_for(lambda: OrderRecord.objects.get(pk=record.pk).broker_status == "filled", what="record filled")
    record.refresh_from_db()
    assert record.source == Source.API and record.filled_qty == 3 and record.filled_avg_price == fill.price
    assert record.filled_at is not None and record.first_fill_ms is not None and record.last_fill_ms == record.first_fill_ms
    audit = AuditEvent.objects.get(action="order.filled", object_id=str(record.pk))
    assert audit.data["execution_id"] == fill.execution_id and audit.actor_type == "system"


def test_external_partial_fills_sum_and_cancel(listening, accounts, sim_urls):
    broker = broker_for(accounts["account_001"])
    resting = broker.submit_order(_limit("MSFT", "10", "1.00", "outside-1"))
    sim_urls.fill(resting.id, qty=4, price=1.00)
    sim_urls.fill(resting.id, qty=6, price=0.97)
    _wait_event(resting.id, "fill")
    events = _events(resting.id)
    assert [e.event for e in events] == ["new", "partial_fill", "fill"]
    assert sum(e.qty for e in events if e.qty) == 10 and [e.position_qty for e in events[1:]] == [4, 10]
    record = OrderRecord.objects.get(broker_order_id=resting.id)
    assert record.source == Source.EXTERNAL and record.client_order_id == "outside-1" and record.symbol == "MSFT"
    assert record.filled_qty == 10 and record.filled_avg_price == Decimal("0.982") and record.broker_status == "filled"
    assert record.first_fill_ms <= record.last_fill_ms
    assert AuditEvent.objects.filter(action="order.partially_filled", object_id=str(record.pk)).count() == 1

    to_cancel = broker.submit_order(_limit("MSFT", "1", "1.00", "outside-2"))
    broker.cancel_order(to_cancel.id)
    _wait_event(to_cancel.id, "canceled")
    record = OrderRecord.objects.get(broker_order_id=to_cancel.id)
    assert record.broker_status == "canceled" and record.filled_qty == 0
    assert AuditEvent.objects.filter(action="order.canceled", object_id=str(record.pk)).exists()
    # the other account's stream carried none of this
    assert not OrderEvent.objects.filter(account=accounts["account_002"]).exists()


def _listening_keys(sim) -> int:
    return sim.control("GET", "/_sim/streams")["listening"].get("paper/stream", 0)


def test_gap_recovered_by_reconciliation_without_loss_or_duplicate(listening, accounts, sim_urls):
    sim = sim_urls
    broker = broker_for(accounts["account_001"])
    before = broker.submit_order(_limit("MSFT", "5", "1.00", "gap-0"))
    _wait_event(before.id, "new")
    # the streams drop and cannot come back while the orders below happen
    sim.control("POST", "/_sim/streams/faults", {"action": "refuse", "feed": "paper/stream", "status": 503})
    sim.control("POST", "/_sim/streams/faults", {"action": "drop", "feed": "paper/stream"})
    wait_for(lambda: _listening_keys(sim) == 0, what="streams dropped")
    sim.fill(before.id, qty=2, price=1.00)  # a partial fill of an order the ledger knew
    during = [broker.submit_order(_market("AAPL", "1", f"gap-{i}")) for i in range(1, 4)]
    canceled = broker.submit_order(_limit("MSFT", "1", "1.00", "gap-c"))
    broker.cancel_order(canceled.id)
    sim.control("POST", "/_sim/streams/faults/clear", {})
    listening.wait_connected(2)
    for order in during:
        _wait_event(order.id, "fill")
    _wait_event(canceled.id, "canceled")
    wait_for(lambda: OrderRecord.objects.get(broker_order_id=before.id).filled_qty == 2, what="partial fill recovered")

    after = broker.submit_order(_market("AAPL", "1", "gap-after"))  # and the stream carries on
    _wait_event(after.id, "fill")
    for order in during:
        events = _events(order.id)
        assert [e.event for e in events] == ["new", "fill"] and all(e.reconciled for e in events)
        assert sum(e.qty for e in events if e.qty) == 1
    partial = [e for e in _events(before.id) if e.event == "partial_fill"]
    assert len(partial) == 1 and partial[0].qty == 2 and partial[0].price == Decimal("1.000000") and partial[0].reconciled
    # recorded once each; on a busy machine the order may land while the reconnect's reconciliation still
    # runs, so whether the stream or the reconciliation recorded it is not asserted
    assert [e.event for e in _events(after.id)] == ["new", "fill"]
    # the shard publishes its counters periodically: wait for them rather than read a stale snapshot
    wait_for(lambda: listening.health()["reconnects"] >= 2 and listening.health()["recovered_by_reconciliation"] >= 8,
             what="the reconnect and the recovered events in the listener's health")
    # a second reconnect reconciles the same orders again, and adds nothing. Both streams listening first: on a
    # busy machine the second may still be reconnecting from the first drop, and a drop would miss it.
    listening.wait_connected(2)
    wait_for(lambda: _listening_keys(sim) == 2, what="both streams listening at alpacasim")
    reconnects = listening.health()["reconnects"]  # refused attempts count too: not a fixed figure
    count = OrderEvent.objects.count()
    sim.control("POST", "/_sim/streams/faults", {"action": "drop", "feed": "paper/stream"})
    try:
        # past the streams' ping interval and timeout (15 + 15 s): a drop the client missed is found by its pings
        wait_for(lambda: listening.health()["reconnects"] >= reconnects + 2, timeout=45.0, what="both streams reconnected again")
    except AssertionError as exc:
        at_sim = sim.control("GET", "/_sim/streams")  # counts per feed only: its per-key figures name the API keys
        raise AssertionError(f"{exc}; the listener's streams: {listening.streams()}; alpacasim's connections: "
                             f"{at_sim['connections']}, listening: {at_sim['listening']}") from None
    listening.wait_connected(2)
    after2 = broker.submit_order(_market("AAPL", "1", "gap-after-2"))
    _wait_event(after2.id, "fill")
    assert OrderEvent.objects.count() == count + 2


def test_opted_in_option_buy_opens_its_position_from_the_fill_event(listening, sim_urls):
    chain = client_for(token()).get("/api/v1/options/AAPL/chain?type=call").json()
    symbol = chain["contracts"][0]["symbol"]
    r = client_for(token()).post("/api/v1/options/order", {"option_symbol": symbol, "qty": "2", "side": "buy", "type": "market",
                                                           "time_in_force": "day", "auto_sell_enabled": True,
                                                           "client_order_id": "auto-1"}, format="json")
    assert r.status_code == 201, r.json()
    # no sweep runs in this test: the position comes from the event
    position = wait_for(lambda: ManagedPosition.objects.filter(symbol=symbol).first(), what="managed position from the fill")
    record = OrderRecord.objects.get(client_order_id="auto-1")
    assert position.qty == 2 and position.source_orders == ["auto-1"]
    wait_for(lambda: OrderRecord.objects.get(pk=record.pk).filled_avg_price is not None, what="record filled")
    assert position.entry_price == OrderRecord.objects.get(pk=record.pk).filled_avg_price
    fill = AutoSellFill.objects.get(client_order_id="auto-1")
    assert fill.filled_qty == 2 and fill.final and fill.position_id == position.pk
    # the sweep's own fill absorption, run now against alpacasim, agrees: nothing left to absorb
    account = record.account
    check = AccountCheck(account_pk=account.pk)
    fills_absorb(account=account, broker=broker_for(account), result=check)
    assert "fills_absorbed" not in check.counts and ManagedPosition.objects.get().qty == 2


def test_disable_enable_and_rekey_without_restart(listening, accounts, sim_urls):
    account = accounts["account_002"]
    account.enabled = False
    account.save()
    wait_for(lambda: listening.health()["accounts_expected"] == 1 and _listening_keys(sim_urls) == 1, what="stream stopped")
    account.enabled = True
    account.save()
    listening.wait_connected(2)
    wait_for(lambda: _listening_keys(sim_urls) == 2, what="stream back")
    from accounts import crypto

    account.secret_key_encrypted = crypto.encrypt("not-the-secret")
    account.save()
    wait_for(lambda: listening.health()["accounts_connected"] == 1 and _listening_keys(sim_urls) == 1, what="wrong key refused")


def test_a_replacement_through_the_api_and_one_made_outside_are_linked_in_the_ledger(listening, accounts):
    c = client_for(token())
    r = c.post("/api/v1/stocks/order", {"symbol": "MSFT", "qty": "2", "side": "buy", "type": "limit", "limit_price": "1.00",
                                        "time_in_force": "gtc", "client_order_id": "rp-1"}, format="json")
    assert r.status_code == 201, r.json()
    old_id = r.json()["id"]
    new = c.patch(f"/api/v1/orders/{old_id}", {"limit_price": "1.01", "client_order_id": "rp-2"}, format="json")
    assert new.status_code == 201, new.json()
    _wait_event(old_id, "replaced")
    first, second = OrderRecord.objects.get(client_order_id="rp-1"), OrderRecord.objects.get(client_order_id="rp-2")
    wait_for(lambda: OrderRecord.objects.get(pk=first.pk).broker_status == "replaced", what="the old record replaced")
    assert AuditEvent.objects.filter(action="order.replaced", object_id=str(first.pk)).exists()
    assert _wait_event(new.json()["id"], "new").record_id == second.pk and second.replaces_id == first.pk

    # a replacement made outside the gateway (Alpaca's dashboard) is recorded as external, linked the same way
    outside = broker_for(accounts["account_001"]).replace_order(new.json()["id"], ReplaceRequest(client_order_id="rp-3", qty=Decimal(3)))
    _wait_event(outside.id, "new")
    third = OrderRecord.objects.get(broker_order_id=outside.id)
    assert third.source == Source.EXTERNAL and third.action == "replace" and third.replaces_id == second.pk
    assert third.replaces_order_id == new.json()["id"] and third.qty == 3


def test_the_trade_stream_connects_without_compression(accounts, sim_urls):
    """alpacasim offers permessage-deflate to a client that asks (websockets does by default); ours does not."""
    account = accounts["account_001"]
    target = stream_target({"pk": account.pk, "account_id": account.account_id, "paper_trading": account.paper_trading,
                            "api_key_encrypted": account.api_key_encrypted, "secret_key_encrypted": account.secret_key_encrypted})

    async def extensions() -> tuple[str | None, str | None]:
        async with TradeStream(target) as stream:
            ours = stream._ws.response.headers.get("Sec-WebSocket-Extensions")
        async with websockets.connect(target.url) as ws:
            default = ws.response.headers.get("Sec-WebSocket-Extensions")
        return ours, default

    ours, default = asyncio.run(extensions())
    assert ours is None
    assert default is not None and "permessage-deflate" in default
