"""The order book and fill engine: Alpaca paper rules, positions and cash.

Resting orders are evaluated lazily: whenever a symbol's price is read or set, whenever an account,
its orders or positions are read, and from a light periodic sweep in the server.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from . import errors
from .accounts import Account, Position, stable_uuid
from .market import Market, is_stock_symbol, parse_occ

OPEN_STATUSES = frozenset({"new", "partially_filled", "accepted", "pending_new"})
ORDER_TYPES = ("market", "limit", "stop", "stop_limit")
TIFS = ("day", "gtc", "opg", "cls", "ioc", "fok")
CENT = Decimal("0.01")
QTY_STEP = Decimal("0.000000001")
ZERO = Decimal(0)


def now_utc() -> datetime:
    return datetime.now(UTC)


def to_decimal(value: object, name: str) -> Decimal | None:
    """Numbers or numeric strings, as alpaca-py and hand-written clients send them."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise errors.invalid(f"invalid {name}")
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise errors.invalid(f"invalid {name}: {value!r}") from None
    if not d.is_finite():
        raise errors.invalid(f"invalid {name}: {value!r}")
    return d


def to_bool(value: object, name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise errors.invalid(f"invalid {name}: {value!r}")


def money(x: float | Decimal) -> Decimal:
    return Decimal(str(x)).quantize(CENT)


@dataclass
class Order:
    id: str
    client_order_id: str
    account_key: str
    symbol: str
    asset_class: str
    asset_id: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    extended_hours: bool
    position_intent: str
    created_at: datetime
    status: str = "new"
    filled_qty: Decimal = ZERO
    filled_avg_price: Decimal | None = None
    updated_at: datetime | None = None
    submitted_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    failed_at: datetime | None = None
    triggered: bool = False
    next_eval: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def multiplier(self) -> int:
        return 100 if self.asset_class == "us_option" else 1

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def remaining(self) -> Decimal:
        return (self.qty or ZERO) - self.filled_qty


class Broker:
    def __init__(
        self,
        market: Market,
        seed: int,
        partial_fill_rate: float = 0.0,
        partial_fill_delay: float = 1.0,
    ):
        self.market = market
        self.seed = seed
        self.partial_fill_rate = partial_fill_rate
        self.partial_fill_delay = partial_fill_delay
        self.accounts: dict[str, Account] = {}
        # Trade-update listeners: callables (event, order, extra) called on every order state change,
        # in order. The trade-updates stream subscribes here.
        self.listeners: list = []
        self.reset_state()

    def reset_state(self) -> None:
        self.rng = random.Random(self.seed)
        self.open_by_symbol: dict[str, dict[str, Order]] = {}
        self.order_index: dict[str, Order] = {}

    def _emit(self, event: str, order: Order, **extra) -> None:
        for listener in list(self.listeners):
            listener(event, order, extra)

    # --- accounts -----------------------------------------------------------------------------
    def add_account(self, account: Account) -> None:
        self.accounts[account.api_key] = account

    def authenticate(self, key: str | None, secret: str | None) -> Account | None:
        if not key or not secret:
            return None
        acct = self.accounts.get(key)
        if acct is None or acct.secret_key != secret:
            return None
        return acct

    def valuation(self, acct: Account) -> dict[str, Decimal]:
        long_mv = short_mv = ZERO
        for pos in acct.positions.values():
            mv = pos.qty * money(self.market.quote(pos.symbol).last) * pos.multiplier
            if pos.qty > 0:
                long_mv += mv
            else:
                short_mv += mv
        reserved = sum(
            (o.extra.get("reserved", ZERO) for o in acct.open_orders.values()), ZERO
        )
        buying_power = max(ZERO, acct.cash + short_mv - reserved)
        return {
            "cash": acct.cash,
            "long_market_value": long_mv,
            "short_market_value": short_mv,
            "equity": acct.cash + long_mv + short_mv,
            "buying_power": buying_power.quantize(CENT),
            "reserved": reserved,
        }

    # --- submission ---------------------------------------------------------------------------
    def submit(self, acct: Account, body: dict) -> Order:
        if not isinstance(body, dict):
            raise errors.malformed("request body must be a JSON object")
        if acct.status != "ACTIVE":
            raise errors.forbidden(f"account is not active ({acct.status})")
        symbol = str(body.get("symbol") or "").strip().upper()
        if not symbol:
            raise errors.invalid("symbol is required")
        side = str(body.get("side") or "").lower()
        if side not in ("buy", "sell"):
            raise errors.invalid(f"invalid side: {body.get('side')!r}")
        otype = str(body.get("type") or body.get("order_type") or "").lower()
        if otype not in ORDER_TYPES:
            raise errors.invalid(f"invalid order type: {body.get('type')!r}")
        tif = str(body.get("time_in_force") or "").lower()
        if tif not in TIFS:
            raise errors.invalid(
                f"invalid time_in_force: {body.get('time_in_force')!r}"
            )
        order_class = str(body.get("order_class") or "simple").lower()
        if order_class != "simple":
            raise errors.invalid(
                f"order_class {order_class!r} is not supported by the simulator"
            )
        qty = to_decimal(body.get("qty"), "qty")
        notional = to_decimal(body.get("notional"), "notional")
        limit_price = to_decimal(body.get("limit_price"), "limit_price")
        stop_price = to_decimal(body.get("stop_price"), "stop_price")
        extended = to_bool(body.get("extended_hours"), "extended_hours")
        if (qty is None) == (notional is None):
            raise errors.invalid("qty or notional is required, but not both")
        if qty is not None and qty <= 0:
            raise errors.invalid("qty must be > 0")
        if notional is not None and (notional <= 0 or otype != "market"):
            raise errors.invalid(
                "notional must be > 0 and is only allowed for market orders"
            )
        if otype in ("limit", "stop_limit") and (
            limit_price is None or limit_price <= 0
        ):
            raise errors.invalid(
                "limit_price is required and must be > 0 for limit orders"
            )
        if otype in ("stop", "stop_limit") and (stop_price is None or stop_price <= 0):
            raise errors.invalid(
                "stop_price is required and must be > 0 for stop orders"
            )
        if otype == "market" and limit_price is not None:
            raise errors.invalid("limit_price is not allowed for market orders")
        if extended and not (otype == "limit" and tif == "day"):
            raise errors.invalid("extended hours order must be DAY limit orders")
        client_order_id = str(body.get("client_order_id") or uuid.uuid4())
        if len(client_order_id) > 128:
            raise errors.invalid("client_order_id must be at most 128 characters")
        if client_order_id in acct.by_client_id:
            raise errors.invalid("client_order_id must be unique")

        spec = parse_occ(symbol)
        held = acct.positions.get(symbol)
        held_qty = held.qty if held else ZERO
        if spec is not None:
            asset_class = "us_option"
            if acct.options_level < 1:
                raise errors.forbidden("account is not authorized to trade options")
            if tif != "day":
                raise errors.invalid("options orders only support time_in_force=day")
            if notional is not None or qty != qty.to_integral_value():
                raise errors.invalid("qty must be a whole number for options")
            if extended:
                raise errors.invalid("extended hours are not supported for options")
            if self.market.years_to_expiry(spec) <= 0:
                raise errors.invalid(f"option contract {symbol} has expired")
        elif is_stock_symbol(symbol):
            asset_class = "us_equity"
        else:
            raise errors.invalid(f"asset {symbol} not found")

        quote = self.market.quote(symbol)
        mult = 100 if spec is not None else 1
        if side == "sell" and otype == "market" and quote.bid <= 0 and spec is not None:
            raise errors.invalid(
                f"no available bid for {symbol}; market sell orders are not accepted"
            )

        if side == "buy":
            price = (
                limit_price
                if otype in ("limit", "stop_limit")
                else stop_price
                if otype == "stop"
                else None
            )
            if price is None:
                price = money(quote.ask)
            est = notional if notional is not None else qty * price * mult
            bp = self.valuation(acct)["buying_power"]
            if est > bp:
                raise errors.forbidden(
                    f"insufficient buying power (required: {est:.2f}, available: {bp:.2f})"
                )
            intent = "buy_to_close" if held_qty < 0 else "buy_to_open"
        else:
            pending_sells = sum(
                (
                    o.remaining()
                    for o in acct.open_orders.values()
                    if o.symbol == symbol and o.side == "sell"
                ),
                ZERO,
            )
            available = max(ZERO, held_qty) - pending_sells
            want = qty if qty is not None else ZERO
            if spec is not None and want > available:
                raise errors.forbidden(
                    f"insufficient qty available for order (requested: {want}, available: {max(available, ZERO)}); "
                    "uncovered option positions are not allowed"
                )
            short_part = want - max(available, ZERO)
            if short_part > 0:
                ref = limit_price or money(quote.bid or quote.last)
                bp = self.valuation(acct)["buying_power"]
                if short_part * ref > bp:
                    raise errors.forbidden(
                        "insufficient buying power to open a short position"
                    )
            intent = "sell_to_close" if held_qty > 0 else "sell_to_open"

        now = now_utc()
        order = Order(
            id=str(uuid.uuid4()),
            client_order_id=client_order_id,
            account_key=acct.api_key,
            symbol=symbol,
            asset_class=asset_class,
            asset_id=stable_uuid("asset", symbol),
            side=side,
            type=otype,
            time_in_force=tif,
            qty=qty,
            notional=notional,
            limit_price=limit_price,
            stop_price=stop_price,
            extended_hours=extended,
            position_intent=intent,
            created_at=now,
            updated_at=now,
            submitted_at=now,
        )
        acct.orders[order.id] = order
        acct.by_client_id[client_order_id] = order.id
        acct.open_orders[order.id] = order
        self.order_index[order.id] = order
        self.open_by_symbol.setdefault(symbol, {})[order.id] = order
        self._reserve(order)
        self._emit("new", order)
        self._evaluate(acct, order)
        if order.is_open and tif in ("ioc", "fok"):
            self._finish(order, "canceled")
        return order

    def _reserve(self, order: Order) -> None:
        if order.side != "buy" or not order.is_open:
            order.extra["reserved"] = ZERO
            return
        if order.notional is not None:
            order.extra["reserved"] = order.notional
            return
        price = (
            order.limit_price
            or order.stop_price
            or money(self.market.quote(order.symbol).ask)
        )
        order.extra["reserved"] = order.remaining() * price * order.multiplier

    # --- matching -----------------------------------------------------------------------------
    def evaluate_symbol(self, symbol: str) -> None:
        book = self.open_by_symbol.get(symbol)
        if book:
            for order in list(book.values()):
                self._evaluate(self.accounts[order.account_key], order)

    def evaluate_account(self, acct: Account) -> None:
        for order in list(acct.open_orders.values()):
            self._evaluate(acct, order)

    def evaluate_all(self) -> None:
        for symbol in list(self.open_by_symbol):
            self.evaluate_symbol(symbol)

    def _evaluate(self, acct: Account, order: Order) -> None:
        if not order.is_open or time.monotonic() < order.next_eval:
            return
        q = self.market.quote(order.symbol)
        buy = order.side == "buy"
        if order.type in ("stop", "stop_limit") and not order.triggered:
            stop = float(order.stop_price)
            hit = (
                (q.ask >= stop or q.last >= stop)
                if buy
                else (0 < q.bid <= stop or q.last <= stop)
            )
            if not hit:
                return
            order.triggered = True
        px = q.ask if buy else q.bid
        if px <= 0:
            return
        if order.type in ("limit", "stop_limit"):
            lim = float(order.limit_price)
            if (buy and px > lim) or (not buy and px < lim):
                return
        price = money(px)
        if order.notional is not None:
            fill_qty = (order.notional / price).quantize(QTY_STEP, rounding=ROUND_DOWN)
            order.qty = None
            self._apply_fill(acct, order, fill_qty, price, notional_fill=True)
            return
        fill_qty = order.remaining()
        if self.partial_fill_rate > 0 and self.rng.random() < self.partial_fill_rate:
            part = (fill_qty / 2).to_integral_value(rounding=ROUND_DOWN)
            if Decimal(1) <= part < fill_qty:
                fill_qty = part
                order.next_eval = time.monotonic() + self.partial_fill_delay
        self._apply_fill(acct, order, fill_qty, price)

    def _apply_fill(
        self,
        acct: Account,
        order: Order,
        qty: Decimal,
        price: Decimal,
        notional_fill: bool = False,
    ) -> None:
        mult = order.multiplier
        signed = qty if order.side == "buy" else -qty
        acct.cash -= signed * price * mult
        pos = acct.positions.get(order.symbol)
        if pos is None:
            pos = Position(order.symbol, order.asset_class, order.asset_id)
            acct.positions[order.symbol] = pos
        old = pos.qty
        new = old + signed
        if old == 0 or (old > 0) != (signed > 0):
            if old != 0 and (new == 0 or (new > 0) == (old > 0)):
                pass  # reducing: the average entry price is unchanged
            else:
                pos.avg_entry_price = price  # opening, or flipping through zero
        else:
            pos.avg_entry_price = (
                (abs(old) * pos.avg_entry_price + qty * price) / abs(new)
            ).quantize(Decimal("0.0001"))
        pos.qty = new
        if new == 0:
            del acct.positions[order.symbol]
        prev = order.filled_qty
        total = prev + qty
        prev_avg = order.filled_avg_price or ZERO
        order.filled_avg_price = ((prev * prev_avg + qty * price) / total).quantize(
            Decimal("0.0001")
        )
        order.filled_qty = total
        if notional_fill:
            order.extra["filled_notional_qty"] = total
        now = now_utc()
        order.updated_at = now
        order.filled_at = now
        if notional_fill or total >= (order.qty or ZERO):
            self._finish(order, "filled")
            event = "fill"
        else:
            order.status = "partially_filled"
            self._reserve(order)
            event = "partial_fill"
        self._emit(
            event, order, price=price, qty=qty, position_qty=new,
            execution_id=str(uuid.uuid4()), timestamp=now,
        )

    def _finish(self, order: Order, status: str) -> None:
        now = now_utc()
        order.status = status
        order.updated_at = now
        if status == "canceled":
            order.canceled_at = now
        order.extra["reserved"] = ZERO
        self.accounts[order.account_key].open_orders.pop(order.id, None)
        book = self.open_by_symbol.get(order.symbol)
        if book is not None:
            book.pop(order.id, None)
            if not book:
                del self.open_by_symbol[order.symbol]
        if status != "filled":  # a fill's event carries its execution; _apply_fill sends it
            self._emit(status, order, timestamp=now)

    # --- queries and cancels ------------------------------------------------------------------
    def get_order(self, acct: Account, order_id: str) -> Order:
        order = acct.orders.get(order_id)
        if order is None:
            raise errors.not_found("order not found")
        self._evaluate(acct, order)
        return order

    def get_by_client_id(self, acct: Account, client_order_id: str) -> Order:
        oid = acct.by_client_id.get(client_order_id)
        if oid is None:
            raise errors.not_found("order not found")
        return self.get_order(acct, oid)

    def list_orders(self, acct: Account, query) -> list[Order]:
        self.evaluate_account(acct)
        status = (query.get("status") or "open").lower()
        if status not in ("open", "closed", "all"):
            raise errors.invalid(f"invalid status: {status}")
        try:
            limit = int(query.get("limit") or 50)
        except ValueError:
            raise errors.invalid("invalid limit") from None
        if not 1 <= limit <= 500:
            raise errors.invalid("limit must be between 1 and 500")
        direction = (query.get("direction") or "desc").lower()
        if direction not in ("asc", "desc"):
            raise errors.invalid("direction must be asc or desc")
        after = _parse_time(query.get("after"), "after")
        until = _parse_time(query.get("until"), "until")
        side = (query.get("side") or "").lower() or None
        symbols = {
            s.strip().upper()
            for s in (query.get("symbols") or "").split(",")
            if s.strip()
        }
        out = []
        for o in acct.orders.values():
            if status == "open" and not o.is_open or status == "closed" and o.is_open:
                continue
            if after and o.submitted_at <= after or until and o.submitted_at >= until:
                continue
            if side and o.side != side or symbols and o.symbol not in symbols:
                continue
            out.append(o)
        out.sort(key=lambda o: o.submitted_at, reverse=direction == "desc")
        return out[:limit]

    def cancel(self, acct: Account, order_id: str) -> Order:
        order = acct.orders.get(order_id)
        if order is None:
            raise errors.not_found("order not found")
        self._evaluate(acct, order)
        if not order.is_open:
            raise errors.invalid(
                f'order is not cancelable: it is already in "{order.status}" state'
            )
        self._finish(order, "canceled")
        return order

    def cancel_all(self, acct: Account) -> list[Order]:
        self.evaluate_account(acct)
        out = []
        for order in list(acct.open_orders.values()):
            self._finish(order, "canceled")
            out.append(order)
        return out

    def positions(self, acct: Account) -> list[Position]:
        self.evaluate_account(acct)
        return sorted(acct.positions.values(), key=lambda p: p.symbol)

    def position(self, acct: Account, symbol: str) -> Position:
        self.evaluate_account(acct)
        pos = acct.positions.get(symbol.upper())
        if pos is None:
            raise errors.not_found("position does not exist")
        return pos

    def close_position(
        self, acct: Account, symbol: str, qty: object = None, percentage: object = None
    ) -> Order:
        pos = self.position(acct, symbol)
        q = to_decimal(qty, "qty")
        pct = to_decimal(percentage, "percentage")
        if q is not None and pct is not None:
            raise errors.invalid("only one of qty or percentage may be given")
        total = abs(pos.qty)
        if pct is not None:
            if not 0 < pct <= 100:
                raise errors.invalid("percentage must be in (0, 100]")
            q = (total * pct / 100).quantize(QTY_STEP, rounding=ROUND_DOWN)
            if pos.asset_class == "us_option":
                q = q.to_integral_value(rounding=ROUND_DOWN)
        if q is None:
            q = total
        if q <= 0 or q > total:
            raise errors.forbidden(
                f"insufficient qty available for order (requested: {q}, available: {total})"
            )
        body = {
            "symbol": pos.symbol,
            "qty": str(q),
            "side": "sell" if pos.qty > 0 else "buy",
            "type": "market",
            "time_in_force": "day",
        }
        return self.submit(acct, body)

    def force_fill(
        self, order_id: str, qty: object = None, price: object = None
    ) -> Order:
        order = self.order_index.get(order_id)
        if order is None:
            raise errors.not_found("order not found")
        if not order.is_open:
            raise errors.invalid(
                f'order is not fillable: it is already in "{order.status}" state'
            )
        acct = self.accounts[order.account_key]
        q = to_decimal(qty, "qty")
        p = to_decimal(price, "price")
        if p is None:
            quote = self.market.quote(order.symbol)
            ref = order.limit_price or money(
                quote.ask if order.side == "buy" else (quote.bid or quote.last)
            )
            p = ref
        if order.notional is not None and q is None:
            q = (order.notional / p).quantize(QTY_STEP, rounding=ROUND_DOWN)
            order.qty = None
            self._apply_fill(acct, order, q, money(p), notional_fill=True)
            return order
        remaining = order.remaining()
        if q is None:
            q = remaining
        if not 0 < q <= remaining:
            raise errors.invalid(f"qty must be in (0, {remaining}]")
        self._apply_fill(acct, order, q, money(p))
        return order


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise errors.invalid(f"invalid {name}: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt
