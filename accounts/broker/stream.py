"""Alpaca's market-data stream, one connection per feed (docs/streaming.md).

Spoken directly over ``websockets`` and msgpack rather than through alpaca-py's ``StockDataStream`` /
``OptionDataStream``: those hide the socket inside ``_run_forever``, retry on their own schedule,
cannot tell a stalled connection (pings answered, no data) from a quiet one, and report a 405 symbol
limit only as a log line. The hub needs all four under its control.

``FeedStream.run()`` connects, authenticates, subscribes to the wanted symbols (quotes and trades) and
calls ``on_data(kind, symbol, message)`` for each quote (``q``) and trade (``t``). On a drop, a stall
(no data for ``stall_seconds`` while subscribed), a malformed frame or a refused handshake it
reconnects with exponential backoff and full jitter, re-subscribes, and logs and counts the gap.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgpack
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from accounts import crypto
from accounts.models import AlpacaAccount

logger = logging.getLogger("opitios.stream")

SYMBOL_LIMIT = 405  # Alpaca's symbols per connection (its error 405)
MIN_BACKOFF, MAX_BACKOFF = 0.25, 30.0
RECONNECT_WINDOW = 3600.0  # reconnects are reported over the last hour


def feed_url(kind: str, feed: str) -> str:
    """``stock`` feeds are ``/v2/{iex|sip}``, ``option`` feeds ``/v1beta1/{indicative|opra}``."""
    return f"{settings.ALPACA_STREAM_URL.rstrip('/')}/{'v2' if kind == 'stock' else 'v1beta1'}/{feed}"


def stream_accounts(account_id: str | None):
    """The accounts the hub may stream with, best first: ``account_id`` if enabled, else the enabled paper ones by id."""
    rows = AlpacaAccount.objects.filter(enabled=True)
    return rows.filter(account_id=account_id) if account_id else rows.filter(paper_trading=True).order_by("account_id")


def stream_credentials(account_id: str | None) -> tuple[str, str, str]:
    """(account id, key, secret) of ``account_id``, or of the first enabled paper account by id."""
    row = stream_accounts(account_id).first()
    if row is None:
        raise LookupError(f"no enabled account {account_id!r}" if account_id else "no enabled paper account")
    return row.account_id, crypto.decrypt(row.api_key_encrypted), crypto.decrypt(row.secret_key_encrypted)


class StreamRefused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code


@dataclass
class FeedStats:
    connected: bool = False
    last_message_at: float | None = None  # epoch seconds
    reconnects: collections.deque = field(default_factory=lambda: collections.deque(maxlen=10_000))
    gaps: int = 0
    last_gap_seconds: float | None = None
    malformed: int = 0
    down_since: float | None = field(default_factory=time.time)  # None while connected; read by the stream-down alert

    def reconnects_last_hour(self, now: float | None = None) -> int:
        now = now or time.time()
        return sum(1 for t in self.reconnects if now - t <= RECONNECT_WINDOW)


class FeedStream:
    def __init__(
        self,
        name: str,
        url: str,
        key: str,
        secret: str,
        *,
        on_data: Callable[[str, str, dict], None],
        on_rejected: Callable[[dict[str, str]], None] = lambda rejected: None,
        stall_seconds: float = 10.0,
    ) -> None:
        self.name, self.url = name, url
        self._key, self._secret = key, secret
        self.on_data, self.on_rejected = on_data, on_rejected
        self.stall_seconds = stall_seconds
        self.stats = FeedStats()
        self.wanted: set[str] = set()
        self.subscribed: set[str] = set()  # as Alpaca last confirmed
        self._pending_add: list[str] = []
        self._changed = asyncio.Event()

    def want(self, symbols: set[str]) -> None:
        if set(symbols) != self.wanted:
            self.wanted = set(symbols)
            self._changed.set()

    async def run(self) -> None:
        attempt = 0
        down_since: float | None = None
        while True:
            try:
                async with connect(self.url, additional_headers={"Content-Type": "application/msgpack"},
                                   open_timeout=10, ping_interval=10, ping_timeout=10, max_size=2**24) as ws:
                    await self._handshake(ws)
                    self.stats.connected, self.stats.down_since = True, None
                    self.subscribed = set()
                    await self._sync(ws)
                    if down_since is not None:
                        gap = time.time() - down_since
                        self.stats.gaps += 1
                        self.stats.last_gap_seconds = round(gap, 3)
                        logger.warning("stream gap feed=%s seconds=%.3f resubscribed=%d", self.name, gap, len(self.subscribed))
                    attempt, down_since = 0, None
                    await self._read(ws)
            except asyncio.CancelledError:
                raise
            except (OSError, WebSocketException, StreamRefused, TimeoutError, ValueError) as exc:
                logger.warning("stream %s disconnected: %s", self.name, exc.__class__.__name__ + (f" {exc}" if isinstance(exc, StreamRefused) else ""))
            finally:
                self.stats.connected = False
                self.stats.down_since = self.stats.down_since or time.time()
                self.subscribed = set()
            if down_since is None:
                down_since = time.time()
            self.stats.reconnects.append(time.time())
            attempt += 1
            await asyncio.sleep(random.uniform(0.5, 1.0) * min(MAX_BACKOFF, MIN_BACKOFF * 2 ** (attempt - 1)))

    def _decode(self, raw) -> list:
        try:
            frame = msgpack.unpackb(raw, timestamp=3) if isinstance(raw, bytes) else json.loads(raw)
        except Exception:  # a frame no decoder accepts is counted and skipped; the stream carries on
            self.stats.malformed += 1
            logger.warning("stream %s: malformed frame (%d bytes) ignored", self.name, len(raw))
            return []
        return frame if isinstance(frame, list) else [frame]

    async def _recv(self, ws, timeout: float | None) -> list:
        return self._decode(await asyncio.wait_for(ws.recv(), timeout))

    async def _send(self, ws, message: dict) -> None:
        await ws.send(msgpack.packb(message))

    async def _handshake(self, ws) -> None:
        await self._recv(ws, 10)  # [{"T":"success","msg":"connected"}]
        await self._send(ws, {"action": "auth", "key": self._key, "secret": self._secret})
        for msg in await self._recv(ws, 10):
            if msg.get("T") == "error":
                raise StreamRefused(msg.get("code", 0), msg.get("msg", ""))

    async def _sync(self, ws) -> None:
        """Bring Alpaca's subscription to ``wanted`` (the echo arrives through ``_read``)."""
        self._changed.clear()
        add, drop = self.wanted - self.subscribed, self.subscribed - self.wanted
        if drop:
            await self._send(ws, {"action": "unsubscribe", "trades": sorted(drop), "quotes": sorted(drop)})
        if add:
            self._pending_add = sorted(add)
            await self._send(ws, {"action": "subscribe", "trades": self._pending_add, "quotes": self._pending_add})
        if add or drop:
            self.subscribed = (self.subscribed - drop) | add  # provisional until the echo

    async def _read(self, ws) -> None:
        changed = receive = None
        heard = time.monotonic()  # data, or the moment there was something to wait for
        try:
            while True:
                changed = changed or asyncio.ensure_future(self._changed.wait())
                receive = receive or asyncio.ensure_future(ws.recv())
                if not self.subscribed:
                    heard = time.monotonic()
                left = self.stall_seconds - (time.monotonic() - heard)
                if left <= 0:
                    raise TimeoutError(f"stalled: no data for {self.stall_seconds}s")
                done, _ = await asyncio.wait({receive, changed}, timeout=left if self.subscribed else None,
                                             return_when=asyncio.FIRST_COMPLETED)
                if changed in done:
                    changed = None
                    await self._sync(ws)
                if receive in done:
                    raw, receive = receive.result(), None
                    heard = time.monotonic()
                    self._handle(raw)
        finally:
            for future in (changed, receive):
                if future is not None:
                    future.cancel()
                    if future.done() and not future.cancelled():
                        future.exception()  # retrieved: the connection is being left anyway

    def _handle(self, raw) -> None:
        frame = self._decode(raw)
        if not frame:
            return
        now = time.time()
        self.stats.last_message_at = now
        for msg in frame:
            if not isinstance(msg, dict):
                continue
            kind = msg.get("T")
            if kind in ("q", "t"):
                self.on_data(kind, msg.get("S", ""), msg)
            elif kind == "subscription":
                self.subscribed = set(msg.get("quotes") or ())
            elif kind == "error":
                code = msg.get("code")
                logger.warning("stream %s error %s: %s", self.name, code, msg.get("msg"))
                if code == 405:
                    self.subscribed -= set(self._pending_add)
                    self.on_rejected({s: "symbol_limit" for s in self._pending_add})
