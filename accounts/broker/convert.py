"""SDK models -> the contract's dataclasses (Decimal amounts, aware UTC datetimes). Duck-typed over
alpaca-py's pydantic models, so this module does not import alpaca-py itself."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from accounts.broker.contract import AccountInfo, Bar, BrokerOrder, EquityPoint, OptionContractQuote, Position, Quote, TradeUpdate


def _dec(value) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def to_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _val(value) -> str:
    return getattr(value, "value", value) or ""


def to_account_info(a) -> AccountInfo:
    return AccountInfo(
        account_number=str(a.account_number),
        status=_val(a.status),
        cash=_dec(a.cash) or Decimal(0),
        buying_power=_dec(a.buying_power) or Decimal(0),
        equity=_dec(a.equity) or Decimal(0),
        currency=a.currency or "USD",
    )


def to_order(o) -> BrokerOrder:
    return BrokerOrder(
        id=str(o.id),
        client_order_id=o.client_order_id,
        symbol=o.symbol or "",
        asset_class=_val(o.asset_class),
        side=_val(o.side),
        type=_val(o.type or o.order_type),
        time_in_force=_val(o.time_in_force),
        status=_val(o.status),
        qty=_dec(o.qty),
        notional=_dec(o.notional),
        filled_qty=_dec(o.filled_qty) or Decimal(0),
        filled_avg_price=_dec(o.filled_avg_price),
        limit_price=_dec(o.limit_price),
        stop_price=_dec(o.stop_price),
        created_at=to_utc(o.created_at),
        submitted_at=to_utc(o.submitted_at),
        filled_at=to_utc(o.filled_at),
        canceled_at=to_utc(o.canceled_at),
        extended_hours=bool(o.extended_hours),
        raw=o.model_dump(mode="json", exclude_none=True),
    )


def _when(value) -> datetime | None:
    if not value:
        return None
    return to_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def order_from_json(o: dict) -> BrokerOrder:
    """An order as Alpaca's JSON carries it (the REST body, or a trade update's ``order``)."""
    return BrokerOrder(
        id=str(o["id"]),
        client_order_id=str(o.get("client_order_id") or ""),
        symbol=str(o.get("symbol") or ""),
        asset_class=str(o.get("asset_class") or ""),
        side=str(o.get("side") or ""),
        type=str(o.get("type") or o.get("order_type") or ""),
        time_in_force=str(o.get("time_in_force") or ""),
        status=str(o.get("status") or ""),
        qty=_dec(o.get("qty")),
        notional=_dec(o.get("notional")),
        filled_qty=_dec(o.get("filled_qty")) or Decimal(0),
        filled_avg_price=_dec(o.get("filled_avg_price")),
        limit_price=_dec(o.get("limit_price")),
        stop_price=_dec(o.get("stop_price")),
        created_at=_when(o.get("created_at")),
        submitted_at=_when(o.get("submitted_at")),
        filled_at=_when(o.get("filled_at")),
        canceled_at=_when(o.get("canceled_at")),
        extended_hours=bool(o.get("extended_hours")),
        raw=o,
    )


def trade_update_from_json(data: dict, *, received_at: datetime) -> TradeUpdate:
    order = order_from_json(data["order"])
    return TradeUpdate(
        event=str(data["event"]),
        order=order,
        timestamp=_when(data.get("timestamp")) or order.filled_at or order.submitted_at or received_at,
        received_at=received_at,
        qty=_dec(data.get("qty")),
        price=_dec(data.get("price")),
        position_qty=_dec(data.get("position_qty")),
        execution_id=str(data.get("execution_id") or ""),
    )


def to_position(p) -> Position:
    side = _val(p.side)
    qty = _dec(p.qty) or Decimal(0)
    if side == "short" and qty > 0:
        qty = -qty
    return Position(
        symbol=p.symbol,
        asset_class=_val(p.asset_class),
        side=side,
        qty=qty,
        qty_available=_dec(p.qty_available) if p.qty_available is not None else qty,
        avg_entry_price=_dec(p.avg_entry_price) or Decimal(0),
        current_price=_dec(p.current_price),
        market_value=_dec(p.market_value),
        cost_basis=_dec(p.cost_basis) or Decimal(0),
        unrealized_pl=_dec(p.unrealized_pl),
        unrealized_plpc=_dec(p.unrealized_plpc),
    )


def to_quote(symbol: str, q) -> Quote:
    return Quote(
        symbol=symbol,
        bid=_dec(q.bid_price),
        ask=_dec(q.ask_price),
        bid_size=_dec(q.bid_size),
        ask_size=_dec(q.ask_size),
        timestamp=to_utc(q.timestamp),
    )


def to_bar(b) -> Bar:
    return Bar(
        timestamp=to_utc(b.timestamp),
        open=_dec(b.open),
        high=_dec(b.high),
        low=_dec(b.low),
        close=_dec(b.close),
        volume=_dec(b.volume),
        trade_count=int(b.trade_count) if b.trade_count is not None else None,
        vwap=_dec(b.vwap),
    )


def to_option_contract(symbol: str, snap) -> OptionContractQuote:
    greeks = None
    if snap.greeks is not None:
        greeks = {name: _dec(getattr(snap.greeks, name)) for name in ("delta", "gamma", "theta", "vega", "rho")}
    return OptionContractQuote(
        symbol=symbol,
        quote=to_quote(symbol, snap.latest_quote) if snap.latest_quote is not None else None,
        implied_volatility=_dec(snap.implied_volatility),
        greeks=greeks,
    )


def to_equity_points(history) -> list[EquityPoint]:
    """alpaca-py's ``PortfolioHistory`` (parallel lists; epoch-second timestamps) as points, oldest first."""
    losses = list(history.profit_loss or [])
    return [
        EquityPoint(at=datetime.fromtimestamp(int(ts), UTC), equity=_dec(equity), profit_loss=_dec(losses[i]) if i < len(losses) else None)
        for i, (ts, equity) in enumerate(zip(history.timestamp or [], history.equity or [], strict=False))
    ]
