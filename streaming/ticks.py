"""The hub's side of tick-driven exits (docs/streaming.md, "Tick-driven exits").

A quote of a managed option symbol becomes a ``sellbot.tick_check`` task on the Celery worker, which
evaluates and sells (sellbot/ticks.py): the hub's event loop never waits on the database or the broker,
and the sell bot stays out of the web and hub processes.

The rate is bounded per symbol: at most one task per ``sell_module.tick_eval_interval_ms``. The first
quote after a quiet interval is sent at once; quotes inside the interval are conflated (the latest wins)
and the latest is sent when the interval ends, so the last price of a burst is always evaluated.

A symbol whose positions are all closing is not sent again: before sending, the gate reads which of the batch's
symbols an evaluation marked settled (``sellbot.ticks.symbols_settled``: no open position left), sends the
others, and drops further ticks of the settled ones at once, until the hub re-reads the exit bounds from the
database after the look that settled them (``bounds_read``; every 5 s). Without this the hub sent up to 5
evaluations a second of a sold symbol until that re-read dropped it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sellbot.tasks import tick_check
from sellbot.ticks import symbols_settled

logger = logging.getLogger("opitios.hub")

TICK_TASK_EXPIRES_SECONDS = 2.0  # a queued evaluation older than this is dropped: a newer tick follows


def send_tick_checks(batch: dict[str, dict]) -> None:
    for symbol, tick in batch.items():
        tick_check.apply_async((symbol, tick), expires=TICK_TASK_EXPIRES_SECONDS)


class TickGate:
    def __init__(self, send: Callable[[dict[str, dict]], None] = send_tick_checks, interval_ms: int = 200,
                 settled: Callable[[list[str]], dict[str, float]] = symbols_settled) -> None:
        self.send = send
        self.settled = settled
        self.interval = interval_ms / 1000
        self.last: dict[str, float] = {}
        self.pending: dict[str, dict] = {}
        self.ready: dict[str, dict] = {}
        self.settled_at: dict[str, float] = {}  # symbol -> when an evaluation found nothing open in it (epoch s)
        self.bounds_at = float("-inf")  # when the hub's last read of the exit bounds began (epoch s)
        self.sent = 0
        self.conflated = 0
        self.skipped_settled = 0
        self._wake = asyncio.Event()

    def bounds_read(self, at: float) -> None:
        """The hub read the exit bounds from the database, beginning at ``at``: a symbol settled before then
        is in (or out of) them as the database has it now."""
        self.bounds_at = at
        self.settled_at = {s: t for s, t in self.settled_at.items() if t >= at}

    def offer(self, symbol: str, tick: dict) -> None:
        if self.interval <= 0:
            return
        if symbol in self.settled_at:
            self.skipped_settled += 1
            return
        now = time.monotonic()
        due = self.last.get(symbol, float("-inf")) + self.interval
        if now >= due and symbol not in self.pending:
            self.last[symbol] = now
            self.ready[symbol] = tick
            self._wake.set()
            return
        if symbol in self.pending:
            self.conflated += 1
        else:
            asyncio.get_running_loop().call_later(max(0.0, due - now), self._release, symbol)
        self.pending[symbol] = tick

    def _release(self, symbol: str) -> None:
        tick = self.pending.pop(symbol, None)
        if tick is not None:
            self.last[symbol] = time.monotonic()
            self.ready[symbol] = tick
            self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self.ready = self.ready, {}
            if not batch:
                continue
            try:
                settled, sent = await asyncio.to_thread(self._deliver, batch)
                self.sent += sent
                self.skipped_settled += len(batch) - sent
                self.settled_at.update({s: t for s, t in settled.items() if t >= self.bounds_at})  # not if read since
            except Exception as exc:  # the broker is down: the sweep still runs when it is back
                logger.warning("hub: tick evaluations not sent (%s)", exc.__class__.__name__)

    def _deliver(self, batch: dict[str, dict]) -> tuple[dict[str, float], int]:
        """In a thread: the batch less its settled symbols, sent; (the settled ones, the number sent)."""
        try:  # a mark older than the hub's last read of the bounds is superseded by that read
            settled = {s: t for s, t in self.settled(list(batch)).items() if t >= self.bounds_at}
        except Exception as exc:  # noqa: BLE001 - the cache away: send them all, as before the marks
            logger.warning("hub: settled symbols unknown (%s); sending every tick evaluation", exc.__class__.__name__)
            settled = {}
        live = {s: tick for s, tick in batch.items() if s not in settled}
        if live:
            self.send(live)
        return settled, len(live)
