"""Replacing an open order (``PATCH /api/v1/orders/{id}``; docs/api.md, "Replacing an order").

A replacement is an order attempt of its own: the intent is the order as it will stand (the original's
symbol, side, type and class with the changes applied) with ``replaces`` set, and it takes the whole
pipeline of ``order_place``: idempotency by client_order_id, the pre-trade checks on the new quantity and
price, the broker call (Alpaca's PATCH, which answers with the new order), and its own ``OrderRecord``
(``action=replace``) linked to the record of the order it replaces.
"""
from __future__ import annotations

from dataclasses import replace as dc_replace
from datetime import datetime
from decimal import Decimal

from accounts import broker as broker_seam
from accounts.models import AlpacaAccount
from opitios.errors import ApplicationError

from .intents import OrderIntent
from .models import OrderRecord, Outcome, Source
from .results import Placement
from .selectors import order_record_by_broker_id
from .services import order_place

REPLACEABLE = ("qty", "limit_price", "stop_price", "trail", "time_in_force")
OPEN_STATUSES = ("", "new", "accepted", "pending_new", "partially_filled", "held", "accepted_for_bidding", "calculated")


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError("invalid_order", message, details={"fields": {field: message}})


def _original_intent(*, account: AlpacaAccount, order_id: str) -> OrderIntent:
    """The order being replaced, as an intent: from the gateway's own record when it placed it, else from
    the broker (an order placed elsewhere, or a bracket's leg). A broker error here (404) is raised."""
    record = order_record_by_broker_id(account=account, broker_order_id=order_id)
    if record is not None and record.source != Source.EXTERNAL and record.outcome == Outcome.ACCEPTED:
        legs = record.legs or {}
        tp, sl = legs.get("take_profit") or {}, legs.get("stop_loss") or {}

        def dec(value):
            return None if value in (None, "") else Decimal(str(value))

        return OrderIntent(
            symbol=record.symbol, side=record.side, type=record.order_type, time_in_force=record.time_in_force,
            asset_class=record.asset_class, qty=record.qty, notional=record.notional, limit_price=record.limit_price,
            stop_price=record.stop_price, extended_hours=record.extended_hours, order_class=record.order_class,
            take_profit_limit_price=dec(tp.get("limit_price")), stop_loss_stop_price=dec(sl.get("stop_price")),
            stop_loss_limit_price=dec(sl.get("limit_price")), trail_price=record.trail_price, trail_percent=record.trail_percent,
            # an opted-in option buy stays opted in: the sell bot manages what the replacement fills
            auto_sell_enabled=record.auto_sell_enabled,
        )
    order = broker_seam.broker_for(account).get_order(order_id)
    return OrderIntent(
        symbol=order.symbol, side=order.side, type=order.type, time_in_force=order.time_in_force, asset_class=order.asset_class,
        qty=order.qty, notional=order.notional, limit_price=order.limit_price,
        stop_price=None if order.type == "trailing_stop" else order.stop_price,  # a trailing stop's stop is the broker's
        extended_hours=order.extended_hours, order_class=order.order_class, trail_price=order.trail_price,
        trail_percent=order.trail_percent,
    )


def replacement_intent(original: OrderIntent, *, order_id: str, changes: dict, client_order_id: str | None) -> OrderIntent:
    """The order as it will stand after the replacement; 400 ``invalid_order`` for a change Alpaca refuses."""
    changes = {name: changes[name] for name in REPLACEABLE if changes.get(name) is not None}
    if not changes:
        raise _invalid("qty", f"Give at least one of {', '.join(REPLACEABLE)} to change.")
    if original.notional is not None:
        raise _invalid("qty", "A notional order cannot be replaced; cancel it and place a new one.")
    qty = changes.get("qty")
    if qty is not None and (qty <= 0 or qty != qty.to_integral_value()):
        raise _invalid("qty", "qty of a replacement must be a whole number of shares greater than 0.")
    for name, types in (("limit_price", ("limit", "stop_limit")), ("stop_price", ("stop", "stop_limit")), ("trail", ("trailing_stop",))):
        if name in changes:
            if original.type not in types:
                raise _invalid(name, f"{name} cannot be set on a {original.type} order (only {' or '.join(types)}).")
            if changes[name] <= 0:
                raise _invalid(name, f"{name} must be greater than 0.")
    values = {"time_in_force": changes.get("time_in_force", original.time_in_force), "qty": qty or original.qty}
    for name in ("limit_price", "stop_price"):
        if name in changes:
            values[name] = changes[name]
    if "trail" in changes:
        values["trail_price" if original.trail_price is not None else "trail_percent"] = changes["trail"]
    if original.order_class == "oco" and "limit_price" in changes:
        values["take_profit_limit_price"] = changes["limit_price"]
    return dc_replace(original, **values, client_order_id=client_order_id, replaces=order_id,
                      replace_changes=tuple(sorted(changes.items())))


def order_replace(*, account: AlpacaAccount, order_id: str, changes: dict, client_order_id: str | None, user_id: str,
                  received_at: datetime | None = None) -> Placement:
    """Replace one open order through the order pipeline. Like ``order_place`` it returns the ``Placement``
    (rendered by the view); raises ``ApplicationError`` for invalid input and ``BrokerError`` when the order
    to replace cannot be read."""
    original = _original_intent(account=account, order_id=order_id)
    intent = replacement_intent(original, order_id=order_id, changes=changes, client_order_id=client_order_id)
    placement = order_place(account=account, intent=intent, source=Source.API, user_id=user_id, received_at=received_at)
    if placement.accepted:  # a replay too: the first answer may have been lost before this update
        # Alpaca ends the old order pending_replace, then replaced (the ledger records that event).
        # Only an open status is overwritten: the ledger may have recorded it already.
        OrderRecord.objects.filter(account=account, broker_order_id=order_id, broker_status__in=OPEN_STATUSES).update(
            broker_status="pending_replace")
    return placement
