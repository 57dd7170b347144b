"""The hub's side of tick-driven exits (docs/streaming.md, "Tick-driven exits").

A quote of a managed option symbol becomes a ``sellbot.tick_check`` task on the Celery worker, which
evaluates and sells (sellbot/ticks.py): the hub's event loop never waits on the database or the broker,
and the sell bot stays out of the web and hub processes.

The rate is bounded per symbol: at most one task per ``sell_module.tick_eval_interval_ms``. The first
quote after a quiet interval is sent at once; quotes inside the interval are conflated (the latest wins)
and the latest is sent when the interval ends, so the last price of a burst is always evaluated.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sellbot.tasks import tick_check

logger = logging.getLogger("opitios.hub")

TICK_TASK_EXPIRES_SECONDS = 2.0  # a queued evaluation older than this is dropped: a newer tick follows


def send_tick_checks(batch: dict[str, dict]) -> None:
    for symbol, tick in batch.items():
        tick_check.apply_async((symbol, tick), expires=TICK_TASK_EXPIRES_SECONDS)


class TickGate:
    def __init__(self, send: Callable[[dict[str, dict]], None] = send_tick_checks, interval_ms: int = 200) -> None:
        self.send = send
        self.interval = interval_ms / 1000
        self.last: dict[str, float] = {}
        self.pending: dict[str, dict] = {}
        self.ready: dict[str, dict] = {}
        self.sent = 0
        self.conflated = 0
        self._wake = asyncio.Event()

    def offer(self, symbol: str, tick: dict) -> None:
        if self.interval <= 0:
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
                await asyncio.to_thread(self.send, batch)
                self.sent += len(batch)
            except Exception as exc:  # the broker is down: the sweep still runs when it is back
                logger.warning("hub: tick evaluations not sent (%s)", exc.__class__.__name__)
