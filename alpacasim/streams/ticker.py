"""The one background loop of the streams: ticks, minute bars and pushed fills.

Each cycle it works out how many ticks each subscribed symbol is due (its rate in messages/s), builds
each quote and trade once from the same seeded walk as the REST quotes, and sends every connection one
batched frame. When the simulated clock enters a new minute it sends the finished minute bar (and the
day's bar so far). While anyone listens to trade updates it evaluates the open orders every
``FILL_INTERVAL`` so fills from the walk are pushed, not just found on the next REST read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from ..bars import make_bar
from ..data import _daily_bars
from ..market import parse_occ
from ..serializers import quote_json, trade_json

log = logging.getLogger("alpacasim.streams")

CYCLE = 0.01  # seconds between cycles while anything is subscribed
IDLE = 0.05
FILL_INTERVAL = 0.1
MAX_BACKLOG = 1.0  # a symbol never owes more than a second of ticks after a hiccup


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Ticker:
    def __init__(self, hub) -> None:
        self.hub = hub
        self.next_due: dict[str, float] = {}
        self.trade_id = 0
        self.last_minute: int | None = None
        self.last_fill_sweep = 0.0
        self.ticks_sent = 0

    async def run(self) -> None:
        while True:
            busy = False
            try:
                busy = self.cycle(time.monotonic())
            except Exception:  # the loop must never die
                log.exception("stream cycle failed")
            await asyncio.sleep(CYCLE if busy else IDLE)

    # --- one cycle -----------------------------------------------------------------------------
    def cycle(self, now: float) -> bool:
        hub = self.hub
        conns = [c for c in hub.connections if c.key is not None]
        if any(c.listening for c in conns) and now - self.last_fill_sweep >= FILL_INTERVAL:
            self.last_fill_sweep = now
            hub.broker.evaluate_all()
        data_conns = [c for c in conns if c.subs]
        if not data_conns:
            self.next_due.clear()
            return False
        self._ticks(data_conns, now)
        self._bars(data_conns)
        return True

    def _symbols(self, conn, channel: str) -> set[str]:
        subs = conn.subs.get(channel)
        if not subs:
            return set()
        if "*" in subs:
            return set(subs - {"*"}) | set(self.hub.config.base_prices)
        return subs

    def _due(self, symbol: str, now: float) -> int:
        rate = self.hub.rate_for(symbol)
        if rate <= 0:
            self.next_due.pop(symbol, None)
            return 0
        due = self.next_due.get(symbol)
        if due is None or due < now - MAX_BACKLOG:
            due = now
        if due > now:
            return 0
        period = 1.0 / rate
        n = int((now - due) // period) + 1
        self.next_due[symbol] = due + n * period
        return n

    def _ticks(self, conns, now: float) -> None:
        hub = self.hub
        wanted: dict[str, set[str]] = {}  # symbol -> channels somebody wants
        per_conn = []
        for conn in conns:
            chans = {ch: self._symbols(conn, ch) for ch in ("quotes", "trades")}
            per_conn.append((conn, chans))
            for ch, symbols in chans.items():
                for s in symbols:
                    wanted.setdefault(s, set()).add(ch)
        due = {s: n for s in wanted if (n := self._due(s, now))}
        if not due:
            return
        ts = hub.clock.now()
        msgs: dict[tuple[str, str], dict] = {}
        for symbol in due:
            if symbol in hub.broker.open_by_symbol:
                hub.broker.evaluate_symbol(symbol)
            option = parse_occ(symbol) is not None
            q = hub.market.quote(symbol)
            if "quotes" in wanted[symbol]:
                m = quote_json(q, ts, option=option)
                m.update(T="q", S=symbol)
                msgs[(symbol, "quotes")] = m
            if "trades" in wanted[symbol]:
                self.trade_id += 1
                m = trade_json(q, ts, option=option, trade_id=self.trade_id)
                m.update(T="t", S=symbol)
                msgs[(symbol, "trades")] = m
        for conn, chans in per_conn:
            batch = []
            for ch, symbols in chans.items():
                for s in symbols:
                    m = msgs.get((s, ch))
                    if m is not None:
                        batch.extend([m] * due[s])
            if batch:
                conn.send(batch)
                self.ticks_sent += len(batch)

    def _bars(self, conns) -> None:
        hub = self.hub
        minute = int(hub.clock.timestamp() // 60)
        if self.last_minute is None or minute == self.last_minute:
            self.last_minute = minute
            return
        self.last_minute = minute
        start = datetime.fromtimestamp((minute - 1) * 60, UTC)
        cache: dict[tuple[str, str], dict] = {}
        for conn in conns:
            batch = []
            for ch, kind in (("bars", "b"), ("dailyBars", "d")):
                for symbol in self._symbols(conn, ch):
                    m = cache.get((symbol, ch))
                    if m is None:
                        m = self._bar(symbol, ch, start)
                        m.update(T=kind, S=symbol)
                        cache[(symbol, ch)] = m
                    batch.append(m)
            if batch:
                conn.send(batch)

    def _bar(self, symbol: str, channel: str, start: datetime) -> dict:
        if channel == "bars":
            bar = make_bar(self.hub.market, symbol, start, 60)
        else:
            bar = _daily_bars(self.hub.sim, symbol)[0]  # the same day bar as the REST snapshot
        bar["t"] = _dt(bar["t"])
        return bar
