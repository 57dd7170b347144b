"""What the order pipeline sends to the broker for an intent: a new order (``OrderRequest``, with its class,
legs and trail) or, for a replacement, Alpaca's PATCH (``ReplaceRequest``) of the order it replaces."""
from __future__ import annotations

from accounts.broker import AccountBroker, BrokerOrder, OrderRequest, ReplaceRequest

from .intents import OrderIntent


def order_request(intent: OrderIntent) -> OrderRequest:
    return OrderRequest(
        symbol=intent.symbol,
        side=intent.side,
        type=intent.type,
        time_in_force=intent.time_in_force,
        client_order_id=intent.client_order_id,
        asset_class=intent.asset_class,
        qty=intent.qty,
        notional=intent.notional,
        # an oco order's limit is its take-profit leg's, sent there only (Alpaca's form of it)
        limit_price=None if intent.order_class == "oco" else intent.limit_price,
        stop_price=intent.stop_price,
        extended_hours=intent.extended_hours,
        order_class=intent.order_class,
        take_profit_limit_price=intent.take_profit_limit_price,
        stop_loss_stop_price=intent.stop_loss_stop_price,
        stop_loss_limit_price=intent.stop_loss_limit_price,
        trail_price=intent.trail_price,
        trail_percent=intent.trail_percent,
    )


def replace_request(intent: OrderIntent, changes: dict) -> ReplaceRequest:
    """The PATCH body: only what the client changed (``changes``: field -> new value)."""
    return ReplaceRequest(
        client_order_id=intent.client_order_id,
        qty=changes.get("qty"),
        limit_price=changes.get("limit_price"),
        stop_price=changes.get("stop_price"),
        trail=changes.get("trail"),
        time_in_force=changes.get("time_in_force"),
    )


def broker_send(broker: AccountBroker, intent: OrderIntent) -> BrokerOrder:
    if intent.replaces:
        return broker.replace_order(intent.replaces, replace_request(intent, dict(intent.replace_changes)))
    return broker.submit_order(order_request(intent))
