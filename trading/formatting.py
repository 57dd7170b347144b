"""JSON shapes of the broker contract's dataclasses in API responses."""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from accounts.broker import AccountInfo, Bar, BrokerOrder, OptionContractQuote, Position, Quote
from opitios.formats import iso, num
from opitios.serializers import lean_renderer

from .intents import OPTION, OPTION_MULTIPLIER, OrderIntent, occ_parse
from .serializers import AccountRefSerializer, OrderIntentSerializer, OrderSerializer, QuoteSerializer, TimingSerializer

# The shapes defined by the output serializers, rendered without a Serializer per call.
quote_json: Callable[[Quote], dict] = lean_renderer(QuoteSerializer, exclude=("source", "age_ms"))
broker_order_json: Callable[[BrokerOrder], dict] = lean_renderer(OrderSerializer)
account_ref_json: Callable[[object], dict] = lean_renderer(AccountRefSerializer)
timing_json: Callable[[object], dict] = lean_renderer(TimingSerializer)
intent_json: Callable[[OrderIntent], dict] = lean_renderer(OrderIntentSerializer)


def bar_json(b: Bar) -> dict:
    return {"timestamp": iso(b.timestamp), "open": num(b.open), "high": num(b.high), "low": num(b.low), "close": num(b.close),
            "volume": num(b.volume), "trade_count": b.trade_count, "vwap": num(b.vwap)}


def contract_json(c: OptionContractQuote) -> dict | None:
    parts = occ_parse(c.symbol)
    if parts is None:
        return None
    return {
        "symbol": c.symbol,
        "underlying": parts["root"],
        "expiration_date": parts["expiration"].isoformat(),
        "type": parts["type"],
        "strike": str(parts["strike"]),
        "quote": quote_json(c.quote) if c.quote else None,
        "implied_volatility": num(c.implied_volatility),
        "greeks": {k: str(v) for k, v in c.greeks.items() if v is not None} if c.greeks else None,
    }


def account_json(account, info: AccountInfo) -> dict:
    return {
        "id": account.account_id,
        "name": account.name,
        "account_number": info.account_number,
        "type": account.account_type,
        "type_source": account.type_source,
        "status": info.status,
        "currency": info.currency,
        "cash": num(info.cash),
        "buying_power": num(info.buying_power),
        "equity": num(info.equity),
    }


def position_json(p: Position) -> dict:
    """P/L computed here with the contract multiplier (x100 for options), whatever the upstream sent."""
    mult = OPTION_MULTIPLIER if p.asset_class == OPTION or occ_parse(p.symbol) else Decimal(1)
    cost_basis = p.avg_entry_price * p.qty * mult
    market_value = None if p.current_price is None else p.current_price * p.qty * mult
    pl = None if market_value is None else market_value - cost_basis
    plpc = None if pl is None or cost_basis == 0 else pl / abs(cost_basis)
    q = Decimal("0.01")
    return {
        "symbol": p.symbol,
        "asset_class": p.asset_class,
        "side": p.side,
        "qty": num(p.qty),
        "qty_available": num(p.qty_available),
        "multiplier": int(mult),
        "avg_entry_price": num(p.avg_entry_price),
        "current_price": num(p.current_price),
        "market_value": None if market_value is None else str(market_value.quantize(q)),
        "cost_basis": str(cost_basis.quantize(q)),
        "unrealized_pl": None if pl is None else str(pl.quantize(q)),
        "unrealized_plpc": None if plpc is None else str(plpc.quantize(Decimal("0.000001"))),
    }
