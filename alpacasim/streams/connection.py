"""One client WebSocket: an ordered outbound queue drained by a writer task, where faults apply.

Everything sent to a client goes through ``send``, so message order is the order of the calls, and delay,
stall and malformed frames affect every kind of message alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from aiohttp import web

from .protocol import MALFORMED_BINARY, MALFORMED_TEXT, error

_MALFORMED = object()
_CLOSE = object()
MAX_QUEUE = 10_000  # frames; beyond this the client is too slow and is cut off (407)


class Connection:
    def __init__(
        self,
        hub,
        ws: web.WebSocketResponse,
        request: web.Request,
        feed: str,
        encode: Callable,
        binary: bool,
    ) -> None:
        self.hub = hub
        self.ws = ws
        self.request = request
        self.feed = feed
        self.encode = encode
        self.binary = binary
        self.key: str | None = None  # the API key, once authenticated
        self.subs: dict[str, set[str]] = {}
        self.listening = False  # trade updates
        self.stalled_until = 0.0
        self.queue: asyncio.Queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop())

    # --- outbound ------------------------------------------------------------------------------
    def send(self, obj) -> None:
        if self.queue.qsize() >= MAX_QUEUE:
            self._overflow()
            return
        self.queue.put_nowait((time.monotonic(), obj))

    def send_malformed(self) -> None:
        self.queue.put_nowait((time.monotonic(), _MALFORMED))

    def _overflow(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
            self.queue.task_done()
        self.queue.put_nowait((time.monotonic(), error(407)))
        self.queue.put_nowait((time.monotonic(), _CLOSE))

    async def close_after_flush(self, obj=None) -> None:
        """Send ``obj`` (if any) after what is queued, then close: for errors that end a connection."""
        if obj is not None:
            self.send(obj)
        self.queue.put_nowait((time.monotonic(), _CLOSE))
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    def drop(self) -> None:
        """An abrupt network failure: no close frame, the TCP connection just ends."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def _write_loop(self) -> None:
        ws = self.ws
        while True:
            queued_at, obj = await self.queue.get()
            try:
                delay = self.hub.faults.delay_for(self.feed)
                if delay > 0:
                    wait = queued_at + delay - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                while (stall := self.stalled_until - time.monotonic()) > 0:
                    await asyncio.sleep(stall)
                if ws.closed:
                    return
                if obj is _CLOSE:
                    await ws.close()
                    return
                if obj is _MALFORMED:
                    frame = MALFORMED_BINARY if self.binary else MALFORMED_TEXT
                else:
                    frame = self.encode(obj)
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return  # the peer went away; the handler cleans up
            finally:
                self.queue.task_done()

    async def aclose(self) -> None:
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._writer
        if not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.close()
