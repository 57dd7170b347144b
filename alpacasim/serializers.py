"""Alpaca JSON shapes. Money is strings; timestamps are ISO-8601 UTC with microseconds."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from . import nyse
from .accounts import Account, Position, stable_uuid
from .broker import CENT, Order, money
from .market import NY, Market, OptionSpec, Quote, iso_z


def _s(value: Decimal | float | None) -> str | None:
    if value is None:
        return None
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    text = format(d.normalize(), "f")
    return text


def _m(value: Decimal) -> str:
    """Money: two decimals, as a string."""
    return format(value.quantize(CENT), "f")


def _ts(dt: datetime | None) -> str | None:
    return iso_z(dt) if dt is not None else None


def order_json(o: Order, nested: bool = True) -> dict:
    return {
        "id": o.id,
        "client_order_id": o.client_order_id,
        "created_at": _ts(o.created_at),
        "updated_at": _ts(o.updated_at),
        "submitted_at": _ts(o.submitted_at),
        "filled_at": _ts(o.filled_at) if o.filled_qty > 0 else None,
        "expired_at": _ts(o.expired_at),
        "expires_at": _ts(o.expires_at),
        "canceled_at": _ts(o.canceled_at),
        "failed_at": _ts(o.failed_at),
        "replaced_at": _ts(o.replaced_at),
        "replaced_by": o.replaced_by,
        "replaces": o.replaces,
        "asset_id": o.asset_id,
        "symbol": o.symbol,
        "asset_class": o.asset_class,
        "notional": _s(o.notional),
        "qty": _s(o.qty),
        "filled_qty": _s(o.filled_qty),
        "filled_avg_price": _s(o.filled_avg_price),
        "order_class": o.order_class,
        "order_type": o.type,
        "type": o.type,
        "side": o.side,
        "position_intent": o.position_intent,
        "time_in_force": o.time_in_force,
        "limit_price": _s(o.limit_price),
        "stop_price": _s(o.stop_price),
        "status": o.status,
        "extended_hours": o.extended_hours,
        "legs": [order_json(leg) for leg in o.legs] if nested and o.legs else None,
        "trail_percent": _s(o.trail_percent),
        "trail_price": _s(o.trail_price),
        "hwm": _s(o.hwm),
        "subtag": None,
        "source": None,
    }


def activity_json(a: dict) -> dict:
    out = {}
    for key, value in a.items():
        if isinstance(value, datetime):
            out[key] = _ts(value)
        elif isinstance(value, Decimal):
            out[key] = _s(value)
        else:
            out[key] = value
    return out


def account_json(acct: Account, v: dict[str, Decimal]) -> dict:
    cash = _m(acct.cash)
    bp = _m(v["buying_power"])
    equity = _m(v["equity"])
    return {
        "id": acct.id,
        "admin_configurations": {},
        "user_configurations": None,
        "account_number": acct.account_number,
        "status": acct.status,
        "crypto_status": "INACTIVE",
        "options_approved_level": acct.options_level,
        "options_trading_level": acct.options_level,
        "currency": "USD",
        "buying_power": bp,
        "regt_buying_power": _m(v["regt_buying_power"]),
        "daytrading_buying_power": _m(v["daytrading_buying_power"]),
        "effective_buying_power": bp,
        "non_marginable_buying_power": _m(v["non_marginable_buying_power"]),
        "options_buying_power": _m(v["options_buying_power"]),
        "bod_dtbp": _m(v["bod_dtbp"]),
        "cash": cash,
        "accrued_fees": "0",
        "portfolio_value": equity,
        "pattern_day_trader": False,
        "trading_blocked": acct.status != "ACTIVE",
        "transfers_blocked": False,
        "account_blocked": acct.status != "ACTIVE",
        "created_at": _ts(acct.created_at),
        "trade_suspended_by_user": False,
        "multiplier": str(acct.multiplier),
        "shorting_enabled": acct.multiplier > 1 and not acct.configurations.get("no_shorting"),
        "equity": equity,
        "last_equity": _m(acct.initial_cash if acct.last_equity is None else acct.last_equity),
        "long_market_value": _m(v["long_market_value"]),
        "short_market_value": _m(v["short_market_value"]),
        "position_market_value": _m(v["long_market_value"] - v["short_market_value"]),
        "initial_margin": _m(v["initial_margin"]),
        "maintenance_margin": _m(v["maintenance_margin"]),
        "last_maintenance_margin": _m(acct.last_maintenance),
        "sma": "0",
        "daytrade_count": 0,
        "balance_asof": datetime.now(NY).date().isoformat(),
        "crypto_tier": 0,
        "intraday_adjustments": "0",
        "pending_reg_taf_fees": "0",
        "pending_transfer_in": "0",
        "pending_transfer_out": "0",
    }


def position_json(pos: Position, quote: Quote, qty_available: Decimal, lastday: Decimal) -> dict:
    """``lastday`` is the price at the previous session's close; ``change_today`` and the intraday P&L
    are measured from it."""
    mult = pos.multiplier
    price = money(quote.last)
    qty = pos.qty
    mv = qty * price * mult
    cost = qty * pos.avg_entry_price * mult
    upl = mv - cost
    plpc = (upl / abs(cost)) if cost else Decimal(0)
    day_base = qty * lastday * mult
    day_pl = mv - day_base
    day_plpc = (day_pl / abs(day_base)) if day_base else Decimal(0)
    return {
        "asset_id": pos.asset_id,
        "symbol": pos.symbol,
        "exchange": "NASDAQ" if pos.asset_class == "us_equity" else "",
        "asset_class": pos.asset_class,
        "asset_marginable": pos.asset_class == "us_equity",
        "qty": _s(abs(qty)) if qty >= 0 else _s(qty),
        "qty_available": _s(qty_available),
        "avg_entry_price": _s(pos.avg_entry_price),
        "side": "long" if qty > 0 else "short",
        "market_value": _m(mv),
        "cost_basis": _m(cost),
        "unrealized_pl": _m(upl),
        "unrealized_plpc": _s(plpc.quantize(Decimal("0.0000001"))),
        "unrealized_intraday_pl": _m(day_pl),
        "unrealized_intraday_plpc": _s(day_plpc.quantize(Decimal("0.0000001"))),
        "current_price": _s(price),
        "lastday_price": _s(lastday),
        "change_today": _s(((price - lastday) / lastday).quantize(Decimal("0.0000001"))) if lastday else "0",
    }


def asset_json(symbol: str) -> dict:
    return {
        "id": stable_uuid("asset", symbol),
        "class": "us_equity",
        "exchange": "NASDAQ",
        "symbol": symbol,
        "name": f"{symbol} Simulated Common Stock",
        "status": "active",
        "tradable": True,
        "marginable": True,
        "maintenance_margin_requirement": 30,
        "margin_requirement_long": "30",
        "margin_requirement_short": "100",
        "shortable": True,
        "easy_to_borrow": True,
        "fractionable": True,
        "attributes": [],
    }


def option_contract_json(spec: OptionSpec, market: Market) -> dict:
    q = market.option_quote(spec)
    return {
        "id": stable_uuid("option", spec.symbol),
        "symbol": spec.symbol,
        "name": f"{spec.root} {spec.expiration:%b %d %Y} {spec.strike:g} {spec.kind.title()}",
        "status": "active",
        "tradable": True,
        "expiration_date": spec.expiration.isoformat(),
        "root_symbol": spec.root,
        "underlying_symbol": spec.root,
        "underlying_asset_id": stable_uuid("asset", spec.root),
        "type": spec.kind,
        "style": "american",
        "strike_price": _s(Decimal(str(spec.strike))),
        "multiplier": "100",
        "size": "100",
        "open_interest": str(100 + int(spec.strike * 7) % 5000),
        "open_interest_date": (datetime.now(NY).date() - timedelta(days=1)).isoformat(),
        "close_price": _s(money(q.last)),
        "close_price_date": (datetime.now(NY).date() - timedelta(days=1)).isoformat(),
        "deliverables": [],
    }


def quote_json(q: Quote, ts: str, option: bool = False) -> dict:
    out = {
        "t": ts,
        "ax": "C" if option else "V",
        "ap": q.ask,
        "as": q.ask_size,
        "bx": "C" if option else "V",
        "bp": q.bid,
        "bs": q.bid_size,
        "c": "A" if option else ["R"],
    }
    if not option:
        out["z"] = "C"
    return out


def trade_json(q: Quote, ts: str, option: bool = False, trade_id: int = 1) -> dict:
    out = {
        "t": ts,
        "x": "C" if option else "V",
        "p": q.last,
        "s": 1 if option else 100,
        "c": "I" if option else ["@"],
    }
    if not option:
        out["i"] = trade_id
        out["z"] = "C"
    return out


def calendar_day(d: date) -> dict:
    pre, open_, close, post = nyse.hours(d)
    return {
        "date": d.isoformat(),
        "open": f"{open_:%H:%M}",
        "close": f"{close:%H:%M}",
        "session_open": f"{pre:%H%M}",
        "session_close": f"{post:%H%M}",
        "settlement_date": nyse.next_trading_day(d).isoformat(),  # T+1
    }
