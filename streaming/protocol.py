"""The client protocol of /ws/market-data (docs/streaming.md): kept from the system Opitios replaces."""
from __future__ import annotations

import json
from datetime import UTC, datetime

from trading.intents import occ_parse, stock_symbol_valid


def data_type(symbol: str) -> str | None:
    """``stock``, ``option`` (a compact OCC symbol), or None when it is neither."""
    if occ_parse(symbol) is not None:
        return "option"
    if stock_symbol_valid(symbol):
        return "stock"
    return None


# One group for every fan-out round (streaming/hub.py, streaming/fanout.py): one PUBLISH per round, not one
# per symbol (each a round trip, serialized by the layer's per-connection lock).
ROUND_GROUP = "md.rounds"


def iso(ts) -> str | None:
    if isinstance(ts, datetime):
        return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return ts if isinstance(ts, str) else None


def now_iso() -> str:
    return iso(datetime.now(UTC))


def quote_message(symbol: str, kind: str, upstream: dict) -> dict:
    return {
        "type": "quote", "symbol": symbol, "data_type": kind,
        "bid_price": upstream.get("bp"), "ask_price": upstream.get("ap"),
        "bid_size": upstream.get("bs"), "ask_size": upstream.get("as"),
        "timestamp": iso(upstream.get("t")),
    }


def trade_message(symbol: str, kind: str, upstream: dict) -> dict:
    return {
        "type": "trade", "symbol": symbol, "data_type": kind,
        "price": upstream.get("p"), "size": upstream.get("s"), "timestamp": iso(upstream.get("t")),
    }


def subscription_update(added: list[str], rejected: dict[str, str], total: int) -> dict:
    return {
        "type": "subscription_update",
        "added_symbols": added,
        "rejected_symbols": [{"symbol": s, "reason": r} for s, r in rejected.items()],
        "total_subscribed": total,
    }


# One encoder for every message: json.dumps with separators builds a JSONEncoder per call, a quarter of the
# hub's encoding CPU per quote or trade (timeit).
encode = json.JSONEncoder(separators=(",", ":")).encode


def by_symbol(messages: list[dict]) -> dict[str, tuple[list[str], str | None]]:
    """One fan-out round's messages per symbol, encoded once for every client: the symbol's trades in
    arrival order and its latest quote (an older quote in the same round is conflated, as a client's
    outbox would)."""
    out: dict[str, list] = {}
    for m in messages:
        entry = out.setdefault(m["symbol"], [[], None])
        if m["type"] == "quote":
            entry[1] = m
        else:
            entry[0].append(encode(m))
    return {symbol: (trades, None if quote is None else encode(quote)) for symbol, (trades, quote) in out.items()}
