"""A /ws/market-data client for tests: real WebSockets to a running ``streaming.serve``.

Each test drives its clients inside ``run(coro)``; ``Client.next(type, predicate)`` waits (with a
deadline) for the next message of that type, skipping others; ``closed()`` waits for the server's close.
``Client.open(..., batch=True)`` connects with ``?batch=1``: every frame must then be a JSON array of
messages (``frames`` keeps each frame's size), and ``next`` reads them one message at a time.
"""
from __future__ import annotations

import asyncio
import collections
import json
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

DEADLINE = 20.0


def run(coro, timeout: float = 120.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Client:
    def __init__(self, ws, batch: bool = False) -> None:
        self.ws = ws
        self.batch = batch
        self.frames: list[int] = []  # batch: the number of messages in each frame received
        self._pending: collections.deque[dict] = collections.deque()

    @classmethod
    async def open(cls, port: int, *, token: str | None = None, header_token: str | None = None, batch: bool = False,
                   **kw) -> Client:
        query = [*([f"token={token}"] if token else []), *(["batch=1"] if batch else [])]
        url = f"ws://127.0.0.1:{port}/ws/market-data" + (f"?{'&'.join(query)}" if query else "")
        headers = {"Authorization": f"Bearer {header_token}"} if header_token else None
        return cls(await connect(url, additional_headers=headers, open_timeout=DEADLINE, **kw), batch)

    async def _message(self, timeout: float) -> dict:
        if not self._pending:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if self.batch:
                assert isinstance(frame, list) and frame and all(isinstance(m, dict) for m in frame), frame
                self.frames.append(len(frame))
                self._pending.extend(frame)
            else:
                self._pending.append(frame)
        return self._pending.popleft()

    async def send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))

    async def subscribe(self, symbols: list[str]) -> dict:
        await self.send({"type": "subscribe", "symbols": symbols})
        return await self.next("subscription_update")

    async def next(self, kind: str, predicate=lambda m: True, timeout: float = DEADLINE) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind!r} message within {timeout}s")
            try:
                message = await self._message(left)
            except TimeoutError:
                continue
            if message.get("type") == kind and predicate(message):
                return message

    async def closed(self, timeout: float = DEADLINE) -> tuple[int | None, str]:
        """Read until the server closes; its close code and reason."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            return (rcvd.code, rcvd.reason) if rcvd else (None, "")
        raise AssertionError("not closed")

    async def close(self) -> None:
        await self.ws.close()
