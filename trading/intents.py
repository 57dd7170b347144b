"""``OrderIntent``: an order as a client asked for it, and the rules every path validates it by
(docs/api.md, "Orders"). The API serializers, bulk and the sell bot all build one."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from opitios.config import ORDER_TYPES
from opitios.errors import ApplicationError

from .order_classes import class_errors, legs_json

SIDES = ("buy", "sell")
STOCK_ORDER_TYPES = (*ORDER_TYPES, "trailing_stop")
ORDER_CLASSES = ("simple", "bracket", "oco", "oto")
STOCK_TIME_IN_FORCE = ("day", "gtc", "ioc", "fok", "opg", "cls")
OPTION_TIME_IN_FORCE = ("day",)
STOCK = "us_equity"
OPTION = "us_option"
OPTION_MULTIPLIER = Decimal(100)

STOCK_SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9]{0,9}([./][A-Z0-9]{1,4})?$")
# Compact OCC: ROOT (1-6) YYMMDD C|P STRIKE x 1000 (8 digits), e.g. AAPL260116C00190000
OCC_RE = re.compile(r"^(?P<root>[A-Z]{1,6}[0-9]?)(?P<date>\d{6})(?P<right>[CP])(?P<strike>\d{8})$")
CLIENT_ORDER_ID_RE = re.compile(r"^[\x21-\x7e]{1,48}$")


@dataclass(frozen=True)
class OrderIntent:
    symbol: str
    side: str
    type: str
    time_in_force: str
    asset_class: str = STOCK
    qty: Decimal | None = None
    notional: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    extended_hours: bool = False
    client_order_id: str | None = None
    auto_sell_enabled: bool = False
    # Order classes and trailing stops (stocks only; rules in trading/order_classes.py).
    order_class: str = "simple"
    take_profit_limit_price: Decimal | None = None
    stop_loss_stop_price: Decimal | None = None
    stop_loss_limit_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    # A replacement (PATCH) of this broker order: the intent is the order as it will stand (trading/replace.py).
    replaces: str | None = None
    # ...and what the client changed, as (field, value) pairs: the PATCH sends only these.
    replace_changes: tuple[tuple[str, object], ...] = ()

    def with_client_order_id(self, client_order_id: str) -> OrderIntent:
        return replace(self, client_order_id=client_order_id)

    @property
    def fingerprint(self) -> str:
        return intent_fingerprint(**{name: getattr(self, name) for name in (*FINGERPRINT_FIELDS, *OPTIONAL_FINGERPRINT_FIELDS)})

    # The order's JSON shape (OrderIntentSerializer, trading/serializers_out.py) reads these.
    @property
    def take_profit(self) -> dict | None:
        return legs_json(self).get("take_profit")

    @property
    def stop_loss(self) -> dict | None:
        return legs_json(self).get("stop_loss")

    @property
    def action(self) -> str:
        return "replace" if self.replaces else "place"

    @property
    def multiplier(self) -> Decimal:
        return OPTION_MULTIPLIER if self.asset_class == OPTION else Decimal(1)


# What makes two requests with one client_order_id "the same order" (docs/api.md, "Orders").
FINGERPRINT_FIELDS = ("symbol", "side", "type", "time_in_force", "qty", "notional", "limit_price", "stop_price",
                      "asset_class", "extended_hours")
# Hashed only when set, so a simple order's fingerprint (and every stored intent_hash) stays as it was.
OPTIONAL_FINGERPRINT_FIELDS = ("order_class", "take_profit_limit_price", "stop_loss_stop_price", "stop_loss_limit_price",
                               "trail_price", "trail_percent", "replaces")
_OPTIONAL_DEFAULTS = (None, "simple")


def _canonical(value):
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 1, 1.0 and 1.000000000 (as stored) are one quantity
    return value


def intent_fingerprint(**values) -> str:
    """sha256 of the order's canonical fields (``FINGERPRINT_FIELDS``, as keyword arguments)."""
    canonical = {name: _canonical(values.get(name)) for name in FINGERPRINT_FIELDS}
    canonical.update({name: _canonical(values[name]) for name in OPTIONAL_FINGERPRINT_FIELDS
                      if values.get(name) not in _OPTIONAL_DEFAULTS})
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def occ_parse(symbol: str) -> dict | None:
    """The parts of a compact OCC option symbol, or None when it is not one (the date must exist)."""
    m = OCC_RE.match(symbol or "")
    if not m:
        return None
    try:
        expiration = date(2000 + int(m["date"][:2]), int(m["date"][2:4]), int(m["date"][4:]))
    except ValueError:
        return None
    strike = Decimal(m["strike"]) / 1000
    if strike <= 0:
        return None
    return {"root": m["root"], "expiration": expiration, "type": "call" if m["right"] == "C" else "put", "strike": strike}


def stock_symbol_valid(symbol: str) -> bool:
    return bool(STOCK_SYMBOL_RE.match(symbol or ""))


def intent_errors(intent: OrderIntent) -> dict[str, str]:
    """Every rule the order breaks, keyed by field; empty when valid."""
    errors: dict[str, str] = {}
    option = intent.asset_class == OPTION
    if option:
        if occ_parse(intent.symbol) is None:
            errors["option_symbol"] = (
                f"{intent.symbol!r} is not a compact OCC option symbol: ROOT + YYMMDD + C|P + strike x 1000 in 8 digits, "
                "e.g. AAPL260116C00190000."
            )
    elif not stock_symbol_valid(intent.symbol):
        errors["symbol"] = f"{intent.symbol!r} is not a valid stock symbol."
    if intent.side not in SIDES:
        errors["side"] = f"side must be one of {', '.join(SIDES)}."
    types = ORDER_TYPES if option else STOCK_ORDER_TYPES
    if intent.type not in types:
        errors["type"] = f"type must be one of {', '.join(types)}." if not option or intent.type not in STOCK_ORDER_TYPES else (
            "Option orders accept market, limit, stop and stop_limit only.")
    allowed_tif = OPTION_TIME_IN_FORCE if option else STOCK_TIME_IN_FORCE
    if intent.time_in_force not in allowed_tif:
        errors["time_in_force"] = (
            "Option orders accept time_in_force day only." if option else f"time_in_force must be one of {', '.join(allowed_tif)}."
        )
    if (intent.qty is None) == (intent.notional is None):
        errors["qty"] = "Give exactly one of qty or notional."
    if intent.qty is not None and intent.qty <= 0:
        errors["qty"] = "qty must be greater than 0."
    if intent.notional is not None and intent.notional <= 0:
        errors["notional"] = "notional must be greater than 0."
    if option:
        if intent.notional is not None:
            errors["notional"] = "Option orders take a qty of contracts, not a notional."
        if intent.qty is not None and intent.qty != intent.qty.to_integral_value():
            errors["qty"] = "Option qty must be a whole number of contracts."
    if intent.type in ("limit", "stop_limit") and intent.limit_price is None:
        errors["limit_price"] = f"limit_price is required for {intent.type} orders."
    if intent.type in ("market", "stop") and intent.limit_price is not None:
        errors["limit_price"] = f"limit_price is not allowed for {intent.type} orders."
    if intent.type in ("stop", "stop_limit") and intent.stop_price is None:
        errors["stop_price"] = f"stop_price is required for {intent.type} orders."
    if intent.type in ("market", "limit") and intent.stop_price is not None:
        errors["stop_price"] = f"stop_price is not allowed for {intent.type} orders."
    for name in ("limit_price", "stop_price"):
        value = getattr(intent, name)
        if value is not None and value <= 0 and name not in errors:
            errors[name] = f"{name} must be greater than 0."
    if intent.client_order_id is not None and not CLIENT_ORDER_ID_RE.match(intent.client_order_id):
        errors["client_order_id"] = "client_order_id must be 1 to 48 printable characters without spaces."
    if intent.auto_sell_enabled and not (option and intent.side == "buy"):
        errors["auto_sell_enabled"] = "auto_sell_enabled applies to option buy orders only."
    for name, message in class_errors(intent).items():
        errors.setdefault(name, message)
    return errors


# Ids the gateway itself generates: sell-bot exits (sb-), flatten closes (flat-) and ids for orders sent
# without one (opt-). A client id with these prefixes could replay or cancel as if it were the gateway's own order.
RESERVED_CLIENT_ORDER_ID_PREFIXES = ("sb-", "opt-", "flat-")


def client_order_id_error(client_order_id: str | None) -> str | None:
    """The rule a client-chosen id breaks (its form, a prefix the gateway reserves), or None."""
    if client_order_id is None:
        return None
    if not CLIENT_ORDER_ID_RE.match(client_order_id):
        return "client_order_id must be 1 to 48 printable characters without spaces."
    if client_order_id.lower().startswith(RESERVED_CLIENT_ORDER_ID_PREFIXES):
        return f"client_order_id may not start with {' or '.join(RESERVED_CLIENT_ORDER_ID_PREFIXES)}: the gateway reserves them."
    return None


def client_intent_errors(intent: OrderIntent) -> dict[str, str]:
    """``intent_errors`` plus the rules that apply to ids a client chose (API, quick and bulk orders)."""
    errors = intent_errors(intent)
    message = client_order_id_error(intent.client_order_id or None)
    if message:
        errors.setdefault("client_order_id", message)
    return errors


def intent_validate(intent: OrderIntent) -> OrderIntent:
    errors = intent_errors(intent)
    if errors:
        first = next(iter(errors.values()))
        raise ApplicationError("invalid_order", first, details={"fields": errors})
    return intent
