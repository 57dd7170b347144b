"""An in-memory broker at the seam (accounts/broker.py), for unit tests of the order flow's pure logic.
The real-HTTP tests against alpacasim live in test_api_sim.py."""
from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from accounts.broker import (
    AccountInfo,
    BrokerNotFound,
    BrokerOrder,
    BrokerRejected,
    OptionContractQuote,
    Position,
    Quote,
)


@dataclass
class FakeAccountState:
    cash: Decimal = Decimal("100000")
    positions: dict = field(default_factory=dict)
    orders: dict = field(default_factory=dict)  # client_order_id -> BrokerOrder


class FakeBroker:
    def __init__(self, account_id: str, state: FakeAccountState, world: FakeWorld):
        self.account_id, self.state, self.world = account_id, state, world

    def _maybe_fail(self, method: str):
        self.world.calls.append((self.account_id, method))
        exc = self.world.faults.pop(method, None)
        if exc is not None:
            if isinstance(exc, tuple):  # (exception, also_create): fail after the order exists upstream
                raise exc[0]
            raise exc

    def get_account(self, *, timeout=None):
        self._maybe_fail("get_account")
        return AccountInfo(account_number=f"PA{self.account_id}", status="ACTIVE", cash=self.state.cash,
                           buying_power=self.state.cash * 2, equity=self.state.cash)

    def get_positions(self):
        self._maybe_fail("get_positions")
        return list(self.state.positions.values())

    def get_position(self, symbol, *, timeout=None):
        self._maybe_fail("get_position")
        return self.state.positions.get(symbol)

    def submit_order(self, order):
        self.world.calls.append((self.account_id, "submit_order"))
        fault = self.world.faults.pop("submit_order", None)
        if isinstance(fault, tuple):  # the order reaches the broker, the answer is lost
            self._store(order)
            raise fault[0]
        if fault is not None:
            raise fault
        if order.client_order_id in self.state.orders:
            raise BrokerRejected("client_order_id must be unique", upstream_status=422, upstream_code=40010001)
        return self._store(order)

    def _store(self, order):
        now = datetime.now(UTC)
        bo = BrokerOrder(
            id=str(uuid.uuid4()), client_order_id=order.client_order_id, symbol=order.symbol, asset_class=order.asset_class,
            side=order.side, type=order.type, time_in_force=order.time_in_force, status="accepted", qty=order.qty,
            notional=order.notional, filled_qty=Decimal(0), filled_avg_price=None, limit_price=order.limit_price,
            stop_price=order.stop_price, created_at=now, submitted_at=now, filled_at=None, canceled_at=None,
        )
        self.state.orders[order.client_order_id] = bo
        return bo

    def get_order(self, order_id):
        self._maybe_fail("get_order")
        for o in self.state.orders.values():
            if o.id == order_id:
                return o
        raise BrokerNotFound("order not found", upstream_status=404, upstream_code=40410000)

    def get_order_by_client_id(self, client_order_id):
        self._maybe_fail("get_order_by_client_id")
        return self.state.orders.get(client_order_id)

    def list_orders(self, *, status="open", limit=100, symbols=None, after=None, timeout=None):
        self._maybe_fail("list_orders")
        return list(self.state.orders.values())[:limit]

    def cancel_order(self, order_id):
        self._maybe_fail("cancel_order")
        self.get_order(order_id)


class FakeMarketData:
    def __init__(self, world):
        self.world = world

    def stock_quotes(self, symbols, *, account_id=None, routing_key=None, timeout=None):
        self.world.calls.append((account_id, "stock_quotes"))
        exc = self.world.faults.pop("stock_quotes", None)
        if exc:
            raise exc
        now = datetime.now(UTC)
        return {s: Quote(s, Decimal("99.5"), Decimal("100.5"), Decimal(1), Decimal(1), now) for s in symbols if s != "NOPE"}

    def stock_bars(self, symbol, *, timeframe, start, end, limit, account_id=None, routing_key=None):
        return []

    def option_chain(self, underlying, *, expiration_date=None, option_type=None, account_id=None, routing_key=None):
        return [OptionContractQuote(f"{underlying}260116C00190000", None, None, None)]

    def option_quotes(self, symbols, *, account_id=None, routing_key=None, timeout=None):
        now = datetime.now(UTC)
        return {s: Quote(s, Decimal("1.5"), Decimal("1.6"), Decimal(1), Decimal(1), now) for s in symbols}


class FakeWorld:
    def __init__(self):
        self.states: dict[str, FakeAccountState] = {}
        self.faults: dict = {}
        self.calls: list = []
        self._ids = itertools.count()

    def state(self, account_id) -> FakeAccountState:
        return self.states.setdefault(account_id, FakeAccountState())

    def broker_for(self, account):
        return FakeBroker(account.account_id, self.state(account.account_id), self)

    def market_data(self):
        return FakeMarketData(self)

    def long(self, account_id, symbol, qty, price="100", asset_class="us_equity"):
        qty, price = Decimal(str(qty)), Decimal(price)
        self.state(account_id).positions[symbol] = Position(
            symbol=symbol, asset_class=asset_class, side="long", qty=qty, qty_available=qty, avg_entry_price=price,
            current_price=price, market_value=qty * price, cost_basis=qty * price, unrealized_pl=Decimal(0), unrealized_plpc=Decimal(0),
        )

    def submits(self):
        return [c for c in self.calls if c[1] == "submit_order"]
