"""Alpaca's order rejections that need no broker state beyond the account's open orders.

Each check raises the SimError real Alpaca answers with (status, code and message wording).
"""

from __future__ import annotations

from decimal import Decimal

from . import errors

FRACTIONAL_TYPES = ("market", "limit", "stop", "stop_limit")
_PENNY = Decimal("0.01")
_SUB_PENNY = Decimal("0.0001")


def check_price_increment(value: Decimal | None, name: str) -> None:
    """Prices of $1.00 and above trade in cents, below $1.00 in hundredths of a cent."""
    if value is None:
        return
    step = _PENNY if value >= 1 else _SUB_PENNY
    if value != value.quantize(step):
        raise errors.invalid(
            f"invalid {name} {value}. sub-penny increment does not fulfill minimum pricing criteria"
        )


def check_fractional(
    qty: Decimal | None, notional: Decimal | None, otype: str, tif: str, order_class: str
) -> None:
    fractional = notional is not None or (qty is not None and qty != qty.to_integral_value())
    if not fractional:
        return
    if order_class != "simple":
        raise errors.invalid(f"fractional orders are not supported for {order_class} orders")
    if otype not in FRACTIONAL_TYPES:
        raise errors.invalid(f"fractional orders are not supported for {otype} orders")
    if tif != "day":
        raise errors.invalid("fractional orders must be DAY orders")


def _limit_of(order) -> Decimal | None:
    """The price at which a resting order could trade now; None if it cannot trade yet."""
    if order.type == "market":
        return Decimal("Infinity") if order.side == "buy" else Decimal(0)
    if order.type == "limit" or (order.type == "stop_limit" and order.triggered):
        return order.limit_price
    if order.type in ("stop", "trailing_stop") and order.triggered:
        return Decimal("Infinity") if order.side == "buy" else Decimal(0)
    return None


def check_wash_trade(
    symbol: str, side: str, otype: str, limit_price: Decimal | None, resting: list,
    exempt: set[str],
) -> None:
    """A new market or limit order may not cross the account's own live opposite-side order."""
    if otype not in ("market", "limit"):
        return
    price = limit_price if otype == "limit" else (
        Decimal("Infinity") if side == "buy" else Decimal(0)
    )
    for other in resting:
        if (
            other.symbol != symbol or other.side == side or other.status == "held"
            or other.id in exempt
        ):
            continue
        theirs = _limit_of(other)
        if theirs is None:
            continue
        if (side == "buy" and price >= theirs) or (side == "sell" and price <= theirs):
            raise errors.forbidden("potential wash trade detected. use complex orders")
