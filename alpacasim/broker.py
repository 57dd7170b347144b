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

from . import errors, margin, nyse, order_rules
from .accounts import Account, Position, stable_uuid
from .market import Market, is_stock_symbol, parse_occ

OPEN_STATUSES = frozenset(
    {
        "new", "partially_filled", "accepted", "pending_new", "held", "pending_cancel", "pending_replace",
        "done_for_day",
    }
)
ORDER_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
ORDER_CLASSES = ("simple", "bracket", "oco", "oto")
FINAL_NOT_FILLED = frozenset({"canceled", "expired", "rejected"})
TIFS = ("day", "gtc", "opg", "cls", "ioc", "fok")
CENT = Decimal("0.01")
QTY_STEP = Decimal("0.000000001")
ZERO = Decimal(0)
TIMELINE_MAX = 50_000  # holdings records kept per account for the intraday portfolio history


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
    order_class: str = "simple"
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None
    legs: list[Order] = field(default_factory=list)
    parent_id: str | None = None
    # The take-profit and stop-loss of one position are one-cancels-other; only the first counts
    # against qty_available and buying power.
    oco_secondary: bool = False
    replaces: str | None = None
    replaced_by: str | None = None
    replaced_at: datetime | None = None
    expires_at: datetime | None = None  # a day order's close, on the calendar clock
    auction_at: datetime | None = None  # when an opg/cls order meets its auction
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
        universe: frozenset[str] = frozenset(),
    ):
        self.market = market
        self.universe = universe  # the tradable stock symbols; option roots must be among them
        self.seed = seed
        self.partial_fill_rate = partial_fill_rate
        self.partial_fill_delay = partial_fill_delay
        self.pending_new_seconds = 0.0  # > 0: new orders are pending_new that long before they trade
        self.accounts: dict[str, Account] = {}
        # Trade-update listeners: callables (event, order, extra) called on every order state change,
        # in order. The trade-updates stream subscribes here.
        self.listeners: list = []
        self.reset_state()

    def reset_state(self) -> None:
        self.rng = random.Random(self.seed)
        self.open_by_symbol: dict[str, dict[str, Order]] = {}
        self.order_index: dict[str, Order] = {}
        self._lastday: dict[tuple[str, float], Decimal] = {}

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

    def close_price(self, symbol: str, at: datetime) -> Decimal:
        """A symbol's price at a past close: its override if pinned, else the walk or the option model."""
        ov = self.market.overrides.get(symbol)
        if ov is not None:
            return money(ov.price)
        spec = parse_occ(symbol)
        ts = at.timestamp()
        return money(self.market.option_price_at(spec, ts) if spec else self.market.price_at(symbol, ts))

    def roll_session(self, acct: Account) -> None:
        """Keep ``last_equity`` as the equity at the last close. Called before every fill and on every
        valuation, so the holdings seen here are still those of that close."""
        clock = self.market.clock
        if not clock.follows_calendar:
            return
        close = nyse.last_close(clock.now())
        if acct.equity_asof == close:
            return
        day = close.astimezone(nyse.NY).date()
        # the holdings stood unchanged since the last roll: every close in between saw them too
        since = acct.equity_asof.astimezone(nyse.NY).date() if acct.equity_asof else day
        days = [d for d in nyse.trading_days(since, day) if d not in acct.closes][-400:] or [day]
        for d in days:
            at = nyse.hours(d)[2]
            acct.closes[d] = acct.cash + sum(
                (p.qty * self.close_price(p.symbol, at) * p.multiplier for p in acct.positions.values()),
                ZERO,
            )
        acct.last_equity = acct.closes[day]
        acct.last_maintenance = self._requirements(acct, lambda p: self.close_price(p.symbol, close))[1]
        acct.equity_asof = close

    @staticmethod
    def _requirements(acct: Account, price) -> tuple[Decimal, Decimal]:
        """Initial and maintenance margin of the holdings, each valued at ``price(position)``."""
        stock_gross = option_long = ZERO
        for pos in acct.positions.values():
            mv = pos.qty * price(pos) * pos.multiplier
            if pos.asset_class == "us_equity":
                stock_gross += abs(mv)
            elif mv > 0:
                option_long += mv
        return margin.requirements(stock_gross, option_long)

    def lastday_price(self, symbol: str) -> Decimal:
        """The walk's (or the option model's) last price of the previous session, the close of the
        snapshot's ``prevDailyBar`` (its last price step before the regular close)."""
        ts = nyse.previous_close(self.market.clock.now()).timestamp() - self.market.step
        key = (symbol, ts)
        price = self._lastday.get(key)
        if price is None:  # own cache: the walk's keeps only the current step per symbol
            if len(self._lastday) > 10_000:
                self._lastday.clear()
            spec = parse_occ(symbol)
            price = money(self.market.option_price_at(spec, ts) if spec else self.market.price_at(symbol, ts))
            self._lastday[key] = price
        return price

    def valuation(self, acct: Account) -> dict[str, Decimal]:
        self.roll_session(acct)
        long_mv = short_mv = ZERO
        prices = {}
        for pos in acct.positions.values():
            prices[pos.symbol] = money(self.market.quote(pos.symbol).last)
            mv = pos.qty * prices[pos.symbol] * pos.multiplier
            if pos.qty > 0:
                long_mv += mv
            else:
                short_mv += mv
        reserved = sum(
            (o.extra.get("reserved", ZERO) for o in acct.open_orders.values()), ZERO
        )
        equity = acct.cash + long_mv + short_mv
        initial, maintenance = self._requirements(acct, lambda p: prices[p.symbol])
        power = margin.buying_power(
            acct.multiplier, acct.cash, equity, short_mv, initial, maintenance, reserved,
            acct.initial_cash if acct.last_equity is None else acct.last_equity, acct.last_maintenance,
        )
        return {
            "cash": acct.cash,
            "long_market_value": long_mv,
            "short_market_value": short_mv,
            "equity": equity,
            "reserved": reserved,
            "initial_margin": initial,
            "maintenance_margin": maintenance,
            **{k: v.quantize(CENT) for k, v in power.items()},
        }

    # --- submission ---------------------------------------------------------------------------
    def submit(self, acct: Account, body: dict) -> Order:
        order = self._build(acct, body)
        self._register(acct, order)
        for leg in order.legs:
            self._register(acct, leg)
        self._emit("pending_new" if order.status == "pending_new" else "new", order)
        for leg in order.legs:
            if leg.status != "held":
                self._emit("new", leg)
        self._evaluate(acct, order)
        for leg in order.legs:
            self._evaluate(acct, leg)
        if order.is_open and order.time_in_force in ("ioc", "fok"):
            self._finish(order, "canceled")
        return order

    def qty_available(self, acct: Account, symbol: str, exclude: set[str] = frozenset()) -> Decimal:
        """Held long quantity less what open sell orders already claim (one per one-cancels-other pair)."""
        held = acct.positions.get(symbol)
        pending = sum(
            (
                o.remaining()
                for o in acct.open_orders.values()
                if o.symbol == symbol and o.side == "sell" and o.status != "held"
                and not o.oco_secondary and o.id not in exclude
            ),
            ZERO,
        )
        return (held.qty if held else ZERO) - pending

    def _build(
        self, acct: Account, body: dict, replacing: Order | None = None
    ) -> Order:
        """Validate a request body into an unregistered Order (with its legs), or raise Alpaca's error."""
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
        if order_class not in ORDER_CLASSES:
            raise errors.invalid(
                f"order_class {order_class!r} is not supported by the simulator"
            )
        qty = to_decimal(body.get("qty"), "qty")
        notional = to_decimal(body.get("notional"), "notional")
        limit_price = to_decimal(body.get("limit_price"), "limit_price")
        stop_price = to_decimal(body.get("stop_price"), "stop_price")
        trail_price = to_decimal(body.get("trail_price"), "trail_price")
        trail_percent = to_decimal(body.get("trail_percent"), "trail_percent")
        extended = to_bool(body.get("extended_hours"), "extended_hours")
        take_profit = body.get("take_profit") or None
        stop_loss = body.get("stop_loss") or None
        if (qty is None) == (notional is None):
            raise errors.invalid("qty or notional is required, but not both")
        if qty is not None and qty <= 0:
            raise errors.invalid("qty must be > 0")
        if notional is not None and (notional <= 0 or otype != "market"):
            raise errors.invalid(
                "notional must be > 0 and is only allowed for market orders"
            )
        if order_class == "oco" and limit_price is None and isinstance(take_profit, dict):
            limit_price = to_decimal(take_profit.get("limit_price"), "take_profit.limit_price")
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
        if otype == "trailing_stop":
            if (trail_price is None) == (trail_percent is None):
                raise errors.invalid(
                    "exactly one of trail_price or trail_percent is required for trailing_stop orders"
                )
            if (trail_price or trail_percent) <= 0 or (
                trail_percent is not None and trail_percent >= 100
            ):
                raise errors.invalid("trail_price or trail_percent must be > 0 (percent < 100)")
            if tif not in ("day", "gtc"):
                raise errors.invalid("trailing_stop orders must be day or gtc")
            if limit_price is not None or stop_price is not None:
                raise errors.invalid("limit_price and stop_price are not allowed for trailing_stop orders")
        elif trail_price is not None or trail_percent is not None:
            raise errors.invalid("trail_price and trail_percent are only allowed for trailing_stop orders")
        if extended and not (otype == "limit" and tif == "day"):
            raise errors.invalid("extended hours order must be DAY limit orders")
        clock = self.market.clock
        if tif == "opg" and clock.follows_calendar and clock.session() == "regular":
            raise errors.invalid("opg orders are accepted only outside the regular session")
        order_rules.check_price_increment(limit_price, "limit_price")
        order_rules.check_price_increment(stop_price, "stop_price")
        order_rules.check_fractional(qty, notional, otype, tif, order_class)
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
            if spec.root not in self.universe:
                raise errors.invalid(f"asset {symbol} not found")
            if acct.options_level < 1:
                raise errors.forbidden("account is not authorized to trade options")
            if tif != "day":
                raise errors.invalid("options orders only support time_in_force=day")
            if notional is not None or qty != qty.to_integral_value():
                raise errors.invalid("qty must be a whole number for options")
            if extended:
                raise errors.invalid("extended hours are not supported for options")
            if order_class != "simple" or otype == "trailing_stop":
                raise errors.invalid("options orders must be simple market, limit, stop or stop_limit orders")
            if self.market.years_to_expiry(spec) <= 0:
                raise errors.invalid(f"option contract {symbol} has expired")
        elif is_stock_symbol(symbol) and symbol in self.universe:
            asset_class = "us_equity"
        else:
            raise errors.invalid(f"asset {symbol} not found")

        quote = self.market.quote(symbol)
        mult = 100 if spec is not None else 1
        if side == "sell" and otype == "market" and quote.bid <= 0 and spec is not None:
            raise errors.invalid(
                f"no available bid for {symbol}; market sell orders are not accepted"
            )
        exempt = {replacing.id} if replacing is not None else set()
        if replacing is not None:
            exempt |= {o.id for o in self._group(replacing)}
            if replacing.parent_id:
                exempt.add(replacing.parent_id)
        # a leg's quantity was checked with its entry; replacing it only moves its price
        is_leg = replacing is not None and replacing.parent_id is not None

        if is_leg:
            intent = replacing.position_intent
        elif side == "buy":
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
            bp = self.valuation(acct)["options_buying_power" if spec else "buying_power"] + sum(
                (acct.orders[i].extra.get("reserved", ZERO) for i in exempt), ZERO
            )
            if est > bp:
                raise errors.forbidden(
                    f"insufficient buying power (required: {est:.2f}, available: {bp:.2f})"
                )
            intent = "buy_to_close" if held_qty < 0 else "buy_to_open"
        else:
            available = self.qty_available(acct, symbol, exempt)
            want = qty if qty is not None else ZERO
            if spec is not None and want > max(available, ZERO):
                raise errors.forbidden(
                    f"insufficient qty available for order (requested: {want}, available: {max(available, ZERO)}); "
                    "uncovered option positions are not allowed"
                )
            if held_qty > 0 and want > available:  # includes a sell that would flip long to short
                raise errors.forbidden(
                    f"insufficient qty available for order (requested: {want}, available: {max(available, ZERO)})"
                )
            short_part = want - max(available, ZERO)
            if short_part > 0:
                if acct.multiplier == 1 or acct.configurations.get("no_shorting"):
                    raise errors.forbidden("account is not allowed to short")
                if short_part != short_part.to_integral_value():
                    raise errors.forbidden("fractional orders cannot be sold short")
                if any(
                    o.symbol == symbol and o.side == "buy" and o.status != "held"
                    and o.id not in exempt
                    for o in acct.open_orders.values()
                ):
                    raise errors.forbidden("cannot open a short sell while a long buy order is open")
                ref = limit_price or money(quote.bid or quote.last)
                bp = self.valuation(acct)["buying_power"]
                if short_part * ref > bp:
                    raise errors.forbidden(
                        "insufficient buying power to open a short position"
                    )
            intent = "sell_to_close" if held_qty > 0 else "sell_to_open"
        order_rules.check_wash_trade(
            symbol, side, otype, limit_price, list(acct.open_orders.values()), exempt
        )

        now = now_utc()
        order = Order(
            id=str(uuid.uuid4()),
            client_order_id=client_order_id,
            account_key=acct.api_key,
            symbol=symbol,
            asset_class=asset_class,
            asset_id=stable_uuid("option" if spec else "asset", symbol),
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
            order_class=order_class,
            trail_price=trail_price,
            trail_percent=trail_percent,
        )
        self._schedule(order)
        if otype == "trailing_stop":
            order.hwm = money(quote.last)
            order.stop_price = self._trail_stop(order)
        if order_class != "simple":
            order.legs = self._build_legs(order, take_profit, stop_loss, quote)
        return order

    def _schedule(self, order: Order) -> None:
        """On the calendar clock: day orders expire at the close, opg/cls wait for their auction, and
        an order that cannot trade in the current session is only ``accepted``. One that can is
        ``pending_new`` for ``pending_new_seconds`` (0: at once ``new``)."""
        clock = self.market.clock
        tif = order.time_in_force
        if clock.follows_calendar:
            now = clock.now()
            if tif == "day":
                order.expires_at = (
                    nyse.next_post_close(now) if order.extended_hours else nyse.next_close(now)
                )
            elif tif == "opg":
                order.auction_at = nyse.next_open(now)
            elif tif == "cls":
                order.auction_at = nyse.next_close(now)
        if clock.follows_calendar and not self._tradable_now(order):
            order.status = "accepted"
        elif self.pending_new_seconds > 0 and tif not in ("ioc", "fok"):
            order.status = "pending_new"
            order.next_eval = time.monotonic() + self.pending_new_seconds

    def _tradable_now(self, order: Order) -> bool:
        clock = self.market.clock
        if order.auction_at is not None:
            return clock.now() >= order.auction_at
        session = clock.session()
        return session == "regular" or (
            order.extended_hours and session in ("pre_market", "after_hours")
        )

    def _auction(self, acct: Account, order: Order) -> None:
        """An opg/cls order trades once, at the auction price (the walk at the auction instant)."""
        ov = self.market.overrides.get(order.symbol)
        price = money(ov.price if ov else self.market.price_at(order.symbol, order.auction_at.timestamp()))
        if order.limit_price is not None and (
            price > order.limit_price if order.side == "buy" else price < order.limit_price
        ):
            self._finish(order, "canceled")
            return
        self._apply_fill(acct, order, order.remaining(), price)

    def _build_legs(self, parent: Order, take_profit, stop_loss, quote) -> list[Order]:
        cls = parent.order_class
        if take_profit is not None and not isinstance(take_profit, dict):
            raise errors.invalid("take_profit must be an object")
        if stop_loss is not None and not isinstance(stop_loss, dict):
            raise errors.invalid("stop_loss must be an object")
        if cls in ("bracket", "oco") and (take_profit is None or stop_loss is None):
            raise errors.invalid(f"{cls} orders require take_profit and stop_loss")
        if cls == "oto" and (take_profit is None) == (stop_loss is None):
            raise errors.invalid("oto orders require exactly one of take_profit or stop_loss")
        if parent.time_in_force not in ("day", "gtc"):
            raise errors.invalid(f"{cls} orders must be day or gtc")
        if parent.extended_hours:
            raise errors.invalid(f"extended hours are not supported for {cls} orders")
        if cls == "oco" and parent.type != "limit":
            raise errors.invalid("oco orders must be limit orders")
        if cls != "oco" and parent.type not in ("market", "limit", "stop", "stop_limit"):
            raise errors.invalid(f"{cls} orders must be market, limit, stop or stop_limit orders")
        tp = sl = sl_limit = None
        if take_profit is not None:
            tp = to_decimal(take_profit.get("limit_price"), "take_profit.limit_price")
            if tp is None or tp <= 0:
                raise errors.invalid("take_profit.limit_price is required and must be > 0")
            order_rules.check_price_increment(tp, "take_profit.limit_price")
        if stop_loss is not None:
            sl = to_decimal(stop_loss.get("stop_price"), "stop_loss.stop_price")
            sl_limit = to_decimal(stop_loss.get("limit_price"), "stop_loss.limit_price")
            if sl is None or sl <= 0:
                raise errors.invalid("stop_loss.stop_price is required and must be > 0")
            order_rules.check_price_increment(sl, "stop_loss.stop_price")
            order_rules.check_price_increment(sl_limit, "stop_loss.limit_price")
        # An exit sells above the stop for a long entry and buys below it for a short one.
        exit_long = parent.side == "buy" if cls != "oco" else parent.side == "sell"
        if tp is not None and sl is not None and (tp <= sl if exit_long else tp >= sl):
            raise errors.invalid(
                "take_profit.limit_price must be "
                + ("above" if exit_long else "below")
                + " stop_loss.stop_price"
            )
        leg_side = parent.side if cls == "oco" else ("sell" if parent.side == "buy" else "buy")
        legs = []
        now = parent.created_at
        held = cls != "oco"

        def leg(otype, limit, stop, secondary):
            return Order(
                id=str(uuid.uuid4()), client_order_id=str(uuid.uuid4()),
                account_key=parent.account_key, symbol=parent.symbol,
                asset_class=parent.asset_class, asset_id=parent.asset_id, side=leg_side,
                type=otype, time_in_force=parent.time_in_force, qty=parent.qty, notional=None,
                limit_price=limit, stop_price=stop, extended_hours=False,
                position_intent="sell_to_close" if leg_side == "sell" else "buy_to_close",
                created_at=now, updated_at=now, submitted_at=now,
                status="held" if held else "new", order_class=cls,
                parent_id=parent.id, oco_secondary=secondary, expires_at=parent.expires_at,
            )

        if cls == "oco":
            parent.limit_price = tp
            legs.append(leg("stop_limit" if sl_limit else "stop", sl_limit, sl, True))
            return legs
        if tp is not None:
            legs.append(leg("limit", tp, None, False))
        if sl is not None:
            legs.append(leg("stop_limit" if sl_limit else "stop", sl_limit, sl, tp is not None))
        return legs

    def _register(self, acct: Account, order: Order) -> None:
        acct.orders[order.id] = order
        acct.by_client_id[order.client_order_id] = order.id
        acct.open_orders[order.id] = order
        self.order_index[order.id] = order
        self.open_by_symbol.setdefault(order.symbol, {})[order.id] = order
        self._reserve(order)

    def _reserve(self, order: Order) -> None:
        if (
            order.side != "buy" or not order.is_open or order.status == "held"
            or order.oco_secondary
        ):
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
        """The periodic sweep and clock changes: roll each account past a close, then match orders."""
        for acct in self.accounts.values():
            self.roll_session(acct)
        for symbol in list(self.open_by_symbol):
            self.evaluate_symbol(symbol)

    def _evaluate(self, acct: Account, order: Order) -> None:
        if (
            not order.is_open or order.status == "held"
            or time.monotonic() < order.next_eval
        ):
            return
        if order.expires_at is not None and self.market.clock.now() >= order.expires_at:
            self._finish(order, "expired")
            return
        if not self._tradable_now(order):
            gtc_overnight = order.time_in_force == "gtc" and self.market.clock.follows_calendar
            if order.status in ("new", "partially_filled") and gtc_overnight:
                self._set_status(order, "done_for_day", emit=True)  # resumes at the next open
            return
        if order.status in ("accepted", "done_for_day"):
            self._set_status(order, "partially_filled" if order.filled_qty > 0 else "new")
        elif order.status == "pending_new":
            self._set_status(order, "new", emit=True)
        if order.auction_at is not None:
            self._auction(acct, order)
            return
        q = self.market.quote(order.symbol)
        buy = order.side == "buy"
        if order.type == "trailing_stop" and not order.triggered:
            last = money(q.last)
            order.hwm = max(order.hwm, last) if not buy else min(order.hwm, last)
            order.stop_price = self._trail_stop(order)
            if (last < order.stop_price) if buy else (last > order.stop_price):
                return
            order.triggered = True
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
        self.roll_session(acct)
        signed = qty if order.side == "buy" else -qty
        new = self._book(
            acct, order.symbol, order.asset_class, order.asset_id, signed, price, order.multiplier
        )
        self.record_holdings(acct)
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
        acct.activities.append(
            {
                "id": f"{now:%Y%m%d%H%M%S%f}::{uuid.uuid4()}",
                "activity_type": "FILL",
                "transaction_time": now,
                "type": "fill" if notional_fill or total >= (order.qty or ZERO) else "partial_fill",
                "price": price,
                "qty": qty,
                "side": order.side,
                "symbol": order.symbol,
                "leaves_qty": ZERO if notional_fill else (order.qty or ZERO) - total,
                "order_id": order.id,
                "cum_qty": total,
            }
        )
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
        self._after_fill(acct, order)

    def record_holdings(self, acct: Account) -> None:
        """Note the holdings as they stand now, for the intraday portfolio history."""
        acct.timeline.append(
            (self.market.clock.timestamp(), acct.cash, {p.symbol: p.qty for p in acct.positions.values()})
        )
        if len(acct.timeline) > TIMELINE_MAX:  # bounded: the oldest half folds into the base state
            half = TIMELINE_MAX // 2
            acct.timeline_base = acct.timeline[half - 1][1:]
            del acct.timeline[:half]

    @staticmethod
    def _book(
        acct: Account, symbol: str, asset_class: str, asset_id: str, signed: Decimal,
        price: Decimal, mult: int,
    ) -> Decimal:
        """Move cash and the position by a signed quantity at price; return the new position quantity."""
        acct.cash -= signed * price * mult
        pos = acct.positions.get(symbol)
        if pos is None:
            pos = Position(symbol, asset_class, asset_id)
            acct.positions[symbol] = pos
        old = pos.qty
        new = old + signed
        if old == 0 or (old > 0) != (signed > 0):
            if old != 0 and (new == 0 or (new > 0) == (old > 0)):
                pass  # reducing: the average entry price is unchanged
            else:
                pos.avg_entry_price = price  # opening, or flipping through zero
        else:
            pos.avg_entry_price = (
                (abs(old) * pos.avg_entry_price + abs(signed) * price) / abs(new)
            ).quantize(Decimal("0.0001"))
        pos.qty = new
        if new == 0:
            del acct.positions[symbol]
        return new

    def exercise(self, acct: Account, symbol_or_id: str) -> None:
        """Exercise a whole long option position: shares of the root change hands at the strike."""
        pos = self.position(acct, symbol_or_id)
        self.roll_session(acct)
        spec = parse_occ(pos.symbol)
        if spec is None:
            raise errors.invalid(f"{pos.symbol} is not an option contract")
        if pos.qty <= 0:
            raise errors.forbidden("only long option positions can be exercised")
        if self.market.years_to_expiry(spec) <= 0:
            raise errors.invalid(f"option contract {pos.symbol} has expired")
        if self.qty_available(acct, pos.symbol) < pos.qty:
            raise errors.forbidden("option position is held by open orders; cancel them first")
        shares = pos.qty * 100
        strike = Decimal(str(spec.strike))
        if spec.kind == "call" and shares * strike > self.valuation(acct)["buying_power"]:
            raise errors.forbidden("insufficient buying power to exercise")
        now = now_utc()
        self._book(acct, pos.symbol, pos.asset_class, pos.asset_id, -pos.qty, ZERO, 100)
        signed = shares if spec.kind == "call" else -shares
        self._book(acct, spec.root, "us_equity", stable_uuid("asset", spec.root), signed, strike, 1)
        self.record_holdings(acct)
        acct.activities.append(
            {
                "id": f"{now:%Y%m%d%H%M%S%f}::{uuid.uuid4()}",
                "activity_type": "OPEXC",
                "date": now.date().isoformat(),
                "symbol": spec.symbol,
                "qty": -(shares // 100),
                "description": f"Option exercise: {signed} {spec.root} at {strike}",
            }
        )

    def _set_status(self, order: Order, status: str, emit: bool = False) -> None:
        order.status = status
        order.updated_at = now_utc()
        if emit:
            self._emit(status, order)

    def _finish(self, order: Order, status: str) -> None:
        now = now_utc()
        order.status = status
        order.updated_at = now
        if status == "canceled":
            order.canceled_at = now
        elif status == "expired":
            order.expired_at = now
        order.extra["reserved"] = ZERO
        self.accounts[order.account_key].open_orders.pop(order.id, None)
        book = self.open_by_symbol.get(order.symbol)
        if book is not None:
            book.pop(order.id, None)
            if not book:
                del self.open_by_symbol[order.symbol]
        if status != "filled":  # a fill's event carries its execution; _apply_fill sends it
            self._emit(status, order, timestamp=now)
            if status in FINAL_NOT_FILLED:
                self._after_close(order)

    # --- order classes and trailing stops -----------------------------------------------------
    @staticmethod
    def _trail_stop(order: Order) -> Decimal:
        """The stop a trailing order holds now: trail below the high-water mark (sell), above the low (buy)."""
        hwm = order.hwm
        if order.trail_price is not None:
            offset = order.trail_price
        else:
            offset = hwm * order.trail_percent / 100
        stop = hwm - offset if order.side == "sell" else hwm + offset
        return max(CENT, stop.quantize(CENT))

    def _group(self, order: Order) -> list[Order]:
        """The other members of order's one-cancels-other group (bracket legs; an oco's parent and leg)."""
        if order.order_class == "oco":
            parent = order if order.parent_id is None else self.order_index[order.parent_id]
            members = [parent, *parent.legs]
        elif order.parent_id is not None and order.order_class == "bracket":
            members = list(self.order_index[order.parent_id].legs)
        else:
            return []
        return [o for o in members if o.id != order.id]

    def _activate_legs(self, acct: Account, parent: Order, qty: Decimal) -> None:
        for leg in parent.legs:
            if leg.status != "held":
                continue
            leg.status = "new"
            leg.qty = qty
            leg.updated_at = now_utc()
            self._reserve(leg)
            self._emit("new", leg)
        for leg in parent.legs:
            self._evaluate(acct, leg)

    def _after_fill(self, acct: Account, order: Order) -> None:
        if order.legs and order.order_class in ("bracket", "oto") and order.status == "filled":
            self._activate_legs(acct, order, order.filled_qty)
            return
        for other in self._group(order):
            if not other.is_open:
                continue
            if order.status == "filled":
                self._finish(other, "canceled")
            else:  # a partial fill leaves the sibling only what is still to close
                other.qty = other.filled_qty + order.remaining()
                self._reserve(other)

    def _after_close(self, order: Order) -> None:
        """An entry that ends unfilled takes its held legs with it; one that partly filled arms them."""
        acct = self.accounts[order.account_key]
        if order.legs and order.order_class in ("bracket", "oto"):
            if order.filled_qty > 0:
                self._activate_legs(acct, order, order.filled_qty)
            else:
                for leg in order.legs:
                    if leg.is_open:
                        self._finish(leg, order.status)
            return
        for other in self._group(order):
            if other.is_open:
                self._finish(other, order.status)

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

    def list_orders(self, acct: Account, query, nested: bool = False) -> list[Order]:
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
            if nested and o.parent_id is not None:
                continue  # shown inside its parent
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
        self._cancel(order)
        return order

    def _cancel(self, order: Order) -> None:
        if not order.is_open:  # a sibling canceled with an earlier member of its group
            return
        order.status = "pending_cancel"
        order.updated_at = now_utc()
        self._emit("pending_cancel", order)
        self._finish(order, "canceled")

    def cancel_all(self, acct: Account) -> list[Order]:
        self.evaluate_account(acct)
        out = list(acct.open_orders.values())
        for order in out:
            self._cancel(order)
        return out

    def replace(self, acct: Account, order_id: str, body: dict) -> Order:
        """PATCH: a new order takes the old one's place; the old one ends ``replaced``."""
        order = acct.orders.get(order_id)
        if order is None:
            raise errors.not_found("order not found")
        if not isinstance(body, dict):
            raise errors.malformed("request body must be a JSON object")
        self._evaluate(acct, order)
        if not order.is_open:
            raise errors.invalid(
                f'order is not replaceable: it is already in "{order.status}" state'
            )
        fields = ("qty", "time_in_force", "limit_price", "stop_price", "trail", "client_order_id")
        if not any(body.get(f) not in (None, "") for f in fields):
            raise errors.invalid(f"at least one of {', '.join(fields)} is required")
        if order.notional is not None:
            raise errors.invalid("notional orders cannot be replaced")
        if body.get("limit_price") not in (None, "") and order.type not in ("limit", "stop_limit"):
            raise errors.invalid(f"limit_price cannot be set on a {order.type} order")
        if body.get("stop_price") not in (None, "") and order.type not in ("stop", "stop_limit"):
            raise errors.invalid(f"stop_price cannot be set on a {order.type} order")
        trail = to_decimal(body.get("trail"), "trail")
        if trail is not None and order.type != "trailing_stop":
            raise errors.invalid("trail can only be set on a trailing_stop order")
        qty = to_decimal(body.get("qty"), "qty")
        new_body = {
            "symbol": order.symbol,
            "side": order.side,
            "type": order.type,
            "time_in_force": body.get("time_in_force") or order.time_in_force,
            "qty": str(qty if qty is not None else order.remaining()),
            "limit_price": body.get("limit_price") or order.limit_price,
            "stop_price": None if order.type == "trailing_stop" else body.get("stop_price") or order.stop_price,
            "extended_hours": order.extended_hours,
            "client_order_id": body.get("client_order_id"),
        }
        if order.type == "trailing_stop":
            key = "trail_price" if order.trail_price is not None else "trail_percent"
            new_body[key] = trail if trail is not None else getattr(order, key)
        new = self._build(acct, new_body, replacing=order)
        new.order_class = order.order_class
        new.parent_id = order.parent_id
        new.oco_secondary = order.oco_secondary
        new.replaces = order.id
        new.legs = order.legs
        for leg in new.legs:
            leg.parent_id = new.id
        if order.parent_id is not None:
            siblings = self.order_index[order.parent_id].legs
            siblings[siblings.index(order)] = new
        if order.status == "held":
            new.status = "held"
        order.status = "pending_replace"
        order.updated_at = now_utc()
        self._emit("pending_replace", order)
        order.replaced_by = new.id
        order.replaced_at = now_utc()
        self._finish(order, "replaced")
        self._register(acct, new)
        if new.status != "held":
            self._emit("pending_new" if new.status == "pending_new" else "new", new)
        self._evaluate(acct, new)
        return new

    def positions(self, acct: Account) -> list[Position]:
        self.evaluate_account(acct)
        return sorted(acct.positions.values(), key=lambda p: p.symbol)

    def position(self, acct: Account, symbol: str) -> Position:
        self.evaluate_account(acct)
        pos = acct.positions.get(symbol.upper()) or next(
            (p for p in acct.positions.values() if p.asset_id == symbol), None
        )
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
        if not order.is_open or order.status == "held":
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
