"""Order classes (bracket, oco, oto) and trailing stops: the rules Alpaca validates them by, checked before
any record exists (docs/api.md, "Order classes and trailing stops"). Pure: no database, no network.

``class_errors`` reads an ``OrderIntent`` (trading/intents.py) by attribute and returns every broken rule
keyed by field, like ``intent_errors``, which calls it.
"""
from __future__ import annotations

from decimal import Decimal

CLASS_TIME_IN_FORCE = ("day", "gtc")  # bracket, oco, oto and trailing_stop orders
ENTRY_TYPES = ("market", "limit", "stop", "stop_limit")  # a bracket's or oto's entry
LEG_FIELDS = ("take_profit_limit_price", "stop_loss_stop_price", "stop_loss_limit_price")


def _whole(qty: Decimal | None) -> bool:
    return qty is None or qty == qty.to_integral_value()


def exits_long(intent) -> bool:
    """Whether the exit legs sell (a long entry; an oco sells both ways) rather than buy to cover."""
    return intent.side == ("sell" if intent.order_class == "oco" else "buy")


def _trailing_errors(intent) -> dict[str, str]:
    errors: dict[str, str] = {}
    if intent.type != "trailing_stop":
        for name in ("trail_price", "trail_percent"):
            if getattr(intent, name) is not None:
                errors[name] = f"{name} applies to trailing_stop orders only."
        return errors
    if (intent.trail_price is None) == (intent.trail_percent is None):
        errors["trail_price"] = "Give exactly one of trail_price or trail_percent for a trailing_stop order."
    elif intent.trail_price is not None and intent.trail_price <= 0:
        errors["trail_price"] = "trail_price must be greater than 0."
    elif intent.trail_percent is not None and not 0 < intent.trail_percent < 100:
        errors["trail_percent"] = "trail_percent must be greater than 0 and less than 100."
    if intent.time_in_force not in CLASS_TIME_IN_FORCE:
        errors["time_in_force"] = "trailing_stop orders accept time_in_force day or gtc only."
    for name in ("limit_price", "stop_price"):
        if getattr(intent, name) is not None:
            errors[name] = f"{name} is not allowed for trailing_stop orders (the stop follows the trail)."
    if intent.notional is not None:
        errors["notional"] = "trailing_stop orders take a qty, not a notional."
    elif not _whole(intent.qty):
        errors["qty"] = "trailing_stop orders take a whole number of shares."
    if intent.extended_hours:
        errors["extended_hours"] = "extended_hours applies to day limit orders only."
    return errors


def _leg_errors(intent) -> dict[str, str]:
    cls = intent.order_class
    tp, sl, sl_limit = intent.take_profit_limit_price, intent.stop_loss_stop_price, intent.stop_loss_limit_price
    errors: dict[str, str] = {}
    if cls in ("bracket", "oco"):
        if tp is None:
            errors["take_profit"] = f"A {cls} order needs take_profit.limit_price."
        if sl is None:
            errors["stop_loss"] = f"A {cls} order needs stop_loss.stop_price."
    elif (tp is None) == (sl is None):
        errors["take_profit"] = "An oto order takes exactly one of take_profit or stop_loss."
    for key, name, value in (("take_profit", "limit_price", tp), ("stop_loss", "stop_price", sl), ("stop_loss", "limit_price", sl_limit)):
        if value is not None and value <= 0:
            errors.setdefault(key, f"{key}.{name} must be greater than 0.")
    if sl is None and sl_limit is not None:
        errors.setdefault("stop_loss", "stop_loss.limit_price needs a stop_loss.stop_price.")
    if errors:
        return errors
    long = exits_long(intent)
    above, below = ("above", "below") if long else ("below", "above")
    if tp is not None and sl is not None and (tp <= sl if long else tp >= sl):
        errors["take_profit"] = f"take_profit.limit_price must be {above} stop_loss.stop_price for a {intent.side} {cls} order."
    entry = intent.limit_price if intent.type in ("limit", "stop_limit") else intent.stop_price if intent.type == "stop" else None
    if cls != "oco" and entry is not None:
        if tp is not None and (tp <= entry if long else tp >= entry):
            errors.setdefault("take_profit", f"take_profit.limit_price must be {above} the entry price {entry} of a {intent.side} order.")
        if sl is not None and (sl >= entry if long else sl <= entry):
            errors.setdefault("stop_loss", f"stop_loss.stop_price must be {below} the entry price {entry} of a {intent.side} order.")
    if cls == "oco" and intent.limit_price is not None and tp is not None and intent.limit_price != tp:
        errors["limit_price"] = "An oco order's limit_price is its take_profit.limit_price; give one or make them equal."
    return errors


def class_errors(intent) -> dict[str, str]:
    """Every order-class and trailing-stop rule the intent breaks, keyed by field; empty when valid."""
    errors = _trailing_errors(intent)
    cls = intent.order_class
    if intent.replaces is not None:
        return errors  # a replacement keeps the order's class and legs; only the trail rules apply
    if cls not in ("simple", "bracket", "oco", "oto"):
        errors["order_class"] = "order_class must be one of simple, bracket, oco, oto."
        return errors
    if cls == "simple":
        for key, fields in (("take_profit", LEG_FIELDS[:1]), ("stop_loss", LEG_FIELDS[1:])):
            if any(getattr(intent, name) is not None for name in fields):
                errors[key] = f"{key} applies to bracket, oco and oto orders only; set order_class."
        return errors
    if intent.asset_class != "us_equity":
        errors["order_class"] = "Option orders are simple orders only."
        return errors
    if cls == "oco" and intent.type != "limit":
        errors["type"] = "An oco order is a limit order (its take-profit) with a stop-loss leg: type must be limit."
    elif cls != "oco" and intent.type not in ENTRY_TYPES:
        errors["type"] = f"A {cls} order's entry must be one of {', '.join(ENTRY_TYPES)}."
    if intent.time_in_force not in CLASS_TIME_IN_FORCE:
        errors["time_in_force"] = f"{cls} orders accept time_in_force day or gtc only."
    if intent.notional is not None:
        errors["notional"] = f"{cls} orders take a qty, not a notional."
    elif not _whole(intent.qty):
        errors["qty"] = f"{cls} orders take a whole number of shares."
    if intent.extended_hours:
        errors["extended_hours"] = f"extended_hours is not supported for {cls} orders."
    for name, message in _leg_errors(intent).items():
        errors.setdefault(name, message)
    return errors


def _num(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")  # 110, not 110.000000 as the field quantizes it


def legs_json(intent) -> dict:
    """The requested legs, as the record keeps them."""
    body = {}
    if intent.take_profit_limit_price is not None:
        body["take_profit"] = {"limit_price": _num(intent.take_profit_limit_price)}
    if intent.stop_loss_stop_price is not None or intent.stop_loss_limit_price is not None:
        body["stop_loss"] = {"stop_price": _num(intent.stop_loss_stop_price), "limit_price": _num(intent.stop_loss_limit_price)}
    return body


def record_class_fields(intent) -> dict:
    """The ``OrderRecord`` fields of an intent's class, legs, trail and replacement (not the FK to the replaced record)."""
    return {
        "order_class": intent.order_class,
        "legs": legs_json(intent),
        "trail_price": intent.trail_price,
        "trail_percent": intent.trail_percent,
        "action": "replace" if intent.replaces else "place",
        "replaces_order_id": intent.replaces or "",
    }
