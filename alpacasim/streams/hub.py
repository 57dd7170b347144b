"""All stream state of one server: open connections per feed, tick rates, the symbol limit and faults."""

from __future__ import annotations

import time
from collections import Counter

from .. import errors
from .connection import Connection
from .faults import Refusal, StreamFault, StreamFaults

MAX_TICK_RATE = 10_000.0  # messages/s per symbol and channel


class StreamHub:
    def __init__(self, sim) -> None:
        self.sim = sim
        self.config = sim.config
        self.broker = sim.broker
        self.market = sim.market
        self.clock = sim.clock
        self.connections: set[Connection] = set()
        self.faults = StreamFaults()
        self.ticker = None  # set when the server starts
        self.reset()

    def reset(self) -> None:
        """Back to the configured rates and limit, without faults. Open connections stay open."""
        self.tick_rate = self.config.stream_tick_rate
        self.tick_rates: dict[str, float] = dict(self.config.stream_tick_rates)
        self.symbol_limit: int = self.config.stream_symbol_limit
        self.auth_timeout: float = self.config.stream_auth_timeout
        self.faults.reset()

    # --- connections ---------------------------------------------------------------------------
    def add(self, conn: Connection) -> None:
        self.connections.add(conn)

    def remove(self, conn: Connection) -> None:
        self.connections.discard(conn)

    def on_feed(self, feed: str, api_key: str | None = None) -> list[Connection]:
        return [
            c
            for c in self.connections
            if (feed in ("*", c.feed)) and (api_key is None or c.key == api_key)
        ]

    def authenticated(self, feed: str, api_key: str) -> int:
        return sum(1 for c in self.connections if c.feed == feed and c.key == api_key)

    def rate_for(self, symbol: str) -> float:
        return self.tick_rates.get(symbol, self.tick_rate)

    def counts(self) -> dict:
        per_feed = Counter(c.feed for c in self.connections)
        by_key: dict[str, Counter] = {}
        for c in self.connections:
            if c.key:
                by_key.setdefault(c.feed, Counter())[c.key] += 1
        listening = Counter(c.feed for c in self.connections if c.listening)
        return {
            "connections": dict(per_feed),
            "authenticated": {f: dict(k) for f, k in by_key.items()},
            "listening": dict(listening),
        }

    def as_json(self) -> dict:
        return {
            **self.counts(),
            "tick_rate": self.tick_rate,
            "tick_rates": self.tick_rates,
            "symbol_limit": self.symbol_limit,
            "auth_timeout_seconds": self.auth_timeout,
            "faults": self.faults.as_json(),
            "ticks_sent": self.ticker.ticks_sent if self.ticker else 0,
        }

    # --- control -------------------------------------------------------------------------------
    def configure(self, body: dict) -> None:
        def rate(value, name: str) -> float:
            try:
                r = float(value)
            except (TypeError, ValueError):
                raise errors.invalid(f"{name} must be a number") from None
            if not 0 <= r <= MAX_TICK_RATE:
                raise errors.invalid(f"{name} must be within 0..{MAX_TICK_RATE:g} messages/s")
            return r

        if "tick_rate" in body:
            self.tick_rate = rate(body["tick_rate"], "tick_rate")
        rates = body.get("tick_rates") or {}
        if not isinstance(rates, dict):
            raise errors.invalid("tick_rates must be an object {symbol: rate}")
        for symbol, value in rates.items():
            if value is None:
                self.tick_rates.pop(str(symbol).upper(), None)
            else:
                self.tick_rates[str(symbol).upper()] = rate(value, f"tick_rates.{symbol}")
        if "symbol_limit" in body:
            try:
                limit = int(body["symbol_limit"] or 0)
            except (TypeError, ValueError):
                raise errors.invalid("symbol_limit must be an integer (0: unlimited)") from None
            if limit < 0:
                raise errors.invalid("symbol_limit must be >= 0 (0: unlimited)")
            self.symbol_limit = limit
        if "auth_timeout_seconds" in body:
            try:
                timeout = float(body["auth_timeout_seconds"])
            except (TypeError, ValueError):
                raise errors.invalid("auth_timeout_seconds must be a number") from None
            if not timeout > 0:
                raise errors.invalid("auth_timeout_seconds must be > 0")
            self.auth_timeout = timeout

    def inject(self, fault: StreamFault) -> int:
        """Apply a fault; returns how many open connections it touched."""
        faults = self.faults
        if fault.action == "refuse":
            faults.refusals[fault.feed] = Refusal(fault.status, fault.count)
            return 0
        if fault.action == "delay":
            if fault.ms > 0:
                faults.delays[fault.feed] = fault.ms / 1000.0
            else:
                faults.delays.pop(fault.feed, None)
            return len(self.on_feed(fault.feed, fault.api_key))
        targets = self.on_feed(fault.feed, fault.api_key)
        for conn in targets:
            if fault.action == "drop":
                conn.drop()
            elif fault.action == "stall":
                conn.stalled_until = time.monotonic() + fault.seconds
            elif fault.action == "malformed":
                conn.send_malformed()
        if fault.action == "stall":
            faults.stalls[fault.feed] = time.monotonic() + fault.seconds
        return len(targets)

    def send_status(self, body: dict) -> int:
        """A trading status (halt, resumption, ...) to the stock connections subscribed to the symbol's statuses."""
        symbol = str(body.get("symbol") or "").upper()
        if not symbol:
            raise errors.invalid("symbol is required")
        msg = {
            "T": "s",
            "S": symbol,
            "sc": str(body.get("status_code") or "H"),
            "sm": str(body.get("status_message") or "Trading Halt"),
            "rc": str(body.get("reason_code") or "T12"),
            "rm": str(body.get("reason_message") or "Trading Halted; For information requested by the listing market"),
            "t": self.clock.now(),
            "z": "C",
        }
        targets = [
            c for c in self.connections
            if c.key and c.feed.startswith("v2/") and ({symbol, "*"} & c.subs.get("statuses", set()))
        ]
        for conn in targets:
            conn.send([msg])
        return len(targets)

    def clear_faults(self) -> None:
        self.faults.reset()
        for conn in self.connections:
            conn.stalled_until = 0.0
