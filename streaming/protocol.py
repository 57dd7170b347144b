"""The client protocol of /ws/market-data (docs/streaming.md): kept from the system Opitios replaces."""
from __future__ import annotations

from datetime import UTC, datetime

from trading.intents import occ_parse, stock_symbol_valid


def data_type(symbol: str) -> str | None:
    """``stock``, ``option`` (a compact OCC symbol), or None when it is neither."""
    if occ_parse(symbol) is not None:
        return "option"
    if stock_symbol_valid(symbol):
        return "stock"
    return None


def group(symbol: str) -> str:
    return f"md.{symbol}"


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


def by_symbol(messages: list[dict]) -> dict[str, list[dict]]:
    """One fan-out round's messages per symbol, in arrival order: every trade, and of the quotes only each
    symbol's latest (an older quote in the same round is conflated, as a client's outbox would)."""
    out: dict[str, list[dict | None]] = {}
    last_quote: dict[str, int] = {}
    for m in messages:
        symbol = m["symbol"]
        queued = out.setdefault(symbol, [])
        if m["type"] == "quote":
            if (i := last_quote.get(symbol)) is not None:
                queued[i] = None
            last_quote[symbol] = len(queued)
        queued.append(m)
    return {symbol: [m for m in queued if m is not None] for symbol, queued in out.items()}
