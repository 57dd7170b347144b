"""The market snapshot a sweep hands to its account checks: the broker clock and the latest option
quotes of the symbols each account manages, fetched once per sweep instead of once per account.

Quotes are market data any account may serve, so one batched call per 100 symbols replaces
a call per account. A check uses the snapshot only while it is at most ``max_age`` seconds old (one
check interval, capped at ``MAX_AGE_SECONDS``): a check that starts later (a long queue, a redelivered
message) fetches its own clock and quotes, so a decision never rests on older prices than the bot's
own cadence would give. Symbols the snapshot does not cover are fetched by the check itself.

The snapshot travels in the message as JSON: decimals as strings, datetimes as ISO 8601.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from accounts.broker import Clock, Quote
from opitios.formats import iso, num

MAX_AGE_SECONDS = 10.0
QUOTE_BATCH = 100  # symbols per latest-quotes request (Alpaca's limit)


@dataclass(frozen=True)
class MarketSnapshot:
    taken_at: float  # epoch seconds (shared by every host, unlike a monotonic clock)
    clock: Clock | None = None
    quotes: dict[str, Quote | None] = field(default_factory=dict)  # None: covered, no quote

    def age(self, now: float | None = None) -> float:
        return (now if now is not None else time.time()) - self.taken_at

    def fresh(self, max_age: float) -> bool:
        return -1.0 <= self.age() <= max_age

    def for_symbols(self, symbols) -> MarketSnapshot:
        return MarketSnapshot(self.taken_at, self.clock, {s: self.quotes[s] for s in symbols if s in self.quotes})

    def to_message(self) -> dict:
        return {"taken_at": self.taken_at, "clock": _clock_out(self.clock), "quotes": {s: _quote_out(q) for s, q in self.quotes.items()}}

    @classmethod
    def from_message(cls, data: dict | None) -> MarketSnapshot | None:
        """None for a missing or malformed snapshot: the check then fetches everything itself."""
        if not data:
            return None
        try:
            quotes = {s: _quote_in(s, q) for s, q in (data.get("quotes") or {}).items()}
            return cls(float(data["taken_at"]), _clock_in(data.get("clock")), quotes)
        except (KeyError, TypeError, ValueError, ArithmeticError):
            return None


def max_age(check_interval: float) -> float:
    return min(max(check_interval, 0.5), MAX_AGE_SECONDS)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _dec(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


def _clock_out(c: Clock | None) -> dict | None:
    if c is None:
        return None
    return {"timestamp": iso(c.timestamp), "is_open": c.is_open, "next_open": iso(c.next_open), "next_close": iso(c.next_close)}


def _clock_in(d: dict | None) -> Clock | None:
    if not d:
        return None
    return Clock(timestamp=_dt(d["timestamp"]), is_open=bool(d["is_open"]), next_open=_dt(d["next_open"]), next_close=_dt(d["next_close"]))


def _quote_out(q: Quote | None) -> dict | None:
    if q is None:
        return None
    return {"bid": num(q.bid), "ask": num(q.ask), "bid_size": num(q.bid_size), "ask_size": num(q.ask_size), "timestamp": iso(q.timestamp)}


def _quote_in(symbol: str, d: dict | None) -> Quote | None:
    if d is None:
        return None
    return Quote(symbol=symbol, bid=_dec(d.get("bid")), ask=_dec(d.get("ask")), bid_size=_dec(d.get("bid_size")),
                 ask_size=_dec(d.get("ask_size")), timestamp=_dt(d.get("timestamp")))
