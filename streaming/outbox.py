"""A client's outgoing queue: quotes conflate (the latest per symbol wins), trades queue in order and
are never dropped; past ``max_backlog`` trades the client is too slow and must be disconnected.

Messages arrive already encoded (JSON text, once per fan-out round for every client: streaming/hub.py)."""
from __future__ import annotations

import asyncio
import collections


class Outbox:
    def __init__(self, max_backlog: int) -> None:
        self.max_backlog = max_backlog
        self.quotes: dict[str, str] = {}
        self.trades: collections.deque[str] = collections.deque()
        self.conflated = 0
        self._ready = asyncio.Event()

    def push(self, symbol: str, trades: list[str], quote: str | None) -> bool:
        """Queue one symbol's trades (in order) and latest quote; False when the trade backlog is over its
        bound (the caller disconnects)."""
        if quote is not None:
            if symbol in self.quotes:
                self.conflated += 1
            self.quotes[symbol] = quote
        self.trades.extend(trades)
        self._ready.set()
        return len(self.trades) <= self.max_backlog

    def __len__(self) -> int:
        return len(self.quotes) + len(self.trades)

    def take(self) -> list[str]:
        """Everything queued: trades in arrival order, then the latest quote of each symbol."""
        out = [*self.trades, *self.quotes.values()]
        self.trades.clear()
        self.quotes = {}
        self._ready.clear()
        return out

    async def wait(self) -> list[str]:
        while not len(self):
            await self._ready.wait()
        return self.take()
