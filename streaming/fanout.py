"""The process side of the fan-out (docs/streaming.md): each ASGI process with clients joins the round group
once, with a channel of its own, and hands each symbol's part of an ``md.round`` to its local clients of that
symbol in memory.

Before, every client connection joined ``md.SYMBOL`` with its own channel: each group message was queued,
deserialized (msgpack, with Redis; deep-copied, in memory) and dispatched through Channels' consumer loop
once per client, two task wake-ups each (bench.hub_fanout profile). Here the channel layer carries it once
per process, and a client costs one call to its outbox (streaming/outbox.py).
"""
from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable

from streaming import protocol

logger = logging.getLogger("opitios.ws")

# a client's deliver(symbol, trades, quote): False when it is too slow (it closes itself, asynchronously)
Deliver = Callable[[str, list[str], "str | None"], None]


class ProcessFanout:
    def __init__(self, layer) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.members: dict[str, dict[object, Deliver]] = {}
        self._task: asyncio.Task | None = None

    async def _channel(self) -> str:
        if self.channel is None:
            self.channel = await self.layer.new_channel("fanout.")
            self._task = asyncio.get_running_loop().create_task(self._receive(self.channel))
        return self.channel

    async def add(self, symbol: str, member: object, deliver: Deliver) -> None:
        channel = await self._channel()
        first = not self.members
        self.members.setdefault(symbol, {})[member] = deliver
        if first:  # the process's first want: join the rounds (the layer's lock keeps join/leave in call order)
            await self.layer.group_add(protocol.ROUND_GROUP, channel)

    async def discard(self, symbol: str, member: object) -> None:
        members = self.members.get(symbol)
        if members is None or members.pop(member, None) is None:
            return
        if not members:
            del self.members[symbol]
            if not self.members:  # no client wants anything: stop receiving the rounds
                await self.layer.group_discard(protocol.ROUND_GROUP, self.channel)

    def deliver(self, message: dict) -> None:
        # one hub fan-out round (streaming/hub.py): per symbol its trades in order and latest quote, encoded
        for symbol, trades, quote in message["r"]:
            for member, deliver in list(self.members.get(symbol, {}).items()):
                try:
                    deliver(symbol, trades, quote)
                except Exception:  # one client's failure must not starve the others
                    logger.exception("ws fan-out to %s failed", member)

    async def _receive(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the layer lost Redis: it reconnects; keep receiving
                logger.warning("ws fan-out: channel layer receive failed (%s)", exc.__class__.__name__)
                await asyncio.sleep(0.5)
                continue
            if message.get("type") == "md.round":
                self.deliver(message)


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ProcessFanout] = weakref.WeakKeyDictionary()


def for_loop(layer) -> ProcessFanout:
    """This event loop's fan-out (one per ASGI process; a test server's loop gets its own)."""
    loop = asyncio.get_running_loop()
    fanout = _per_loop.get(loop)
    if fanout is None or fanout.layer is not layer:
        fanout = _per_loop[loop] = ProcessFanout(layer)
    return fanout
