"""A client's outgoing queue: quotes conflate (the latest per symbol wins), trades queue in order and
are never dropped; past ``max_backlog`` trades the client is too slow and must be disconnected."""
from __future__ import annotations

import asyncio
import collections


class Outbox:
    def __init__(self, max_backlog: int) -> None:
        self.max_backlog = max_backlog
        self.quotes: dict[str, dict] = {}
        self.trades: collections.deque[dict] = collections.deque()
        self.conflated = 0
        self._ready = asyncio.Event()

    def push(self, message: dict) -> bool:
        """Queue ``message``; False when the backlog is over its bound (the caller disconnects)."""
        if message["type"] == "quote":
            if message["symbol"] in self.quotes:
                self.conflated += 1
            self.quotes[message["symbol"]] = message
        else:
            self.trades.append(message)
        self._ready.set()
        return len(self.trades) <= self.max_backlog

    def __len__(self) -> int:
        return len(self.quotes) + len(self.trades)

    def take(self) -> list[dict]:
        """Everything queued: trades in arrival order, then the latest quote of each symbol."""
        out = list(self.trades) + list(self.quotes.values())
        self.trades.clear()
        self.quotes = {}
        self._ready.clear()
        return out

    async def wait(self) -> list[dict]:
        while not len(self):
            await self._ready.wait()
        return self.take()
