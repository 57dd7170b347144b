"""``/ws/market-data`` (docs/streaming.md): the protocol of the system Opitios replaces, over the hub.

Close codes: 4001 no or bad token, 4003 token without ``market_data``, 4008 too many connections for
the user or IP, 4009 too slow (its trade backlog passed ``market_data.max_backlog``).

Framing: one JSON object per frame, as the old system sent; ``?batch=1`` opts in to a JSON array of
messages per frame (what Alpaca's own stream sends): everything queued for the client goes in one frame.
"""
from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from rest_framework_simplejwt.exceptions import TokenError

from opitios import config
from opitios.auth import ClaimsToken
from streaming import connections, fanout, protocol, status
from streaming.hub import HUB_CHANNEL, WANTS_REFRESH_SECONDS
from streaming.outbox import Outbox
from streaming.serve import SEND_FRAMES

logger = logging.getLogger("opitios.ws")

CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN, CLOSE_TOO_MANY, CLOSE_SLOW = 4001, 4003, 4008, 4009
MAX_MESSAGE_BYTES = 64 * 1024


def _batched(scope) -> bool:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("batch")
    return bool(values) and values[0].lower() in ("1", "true", "yes")


def _token(scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if kind.lower() == "bearer" else None
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


class MarketDataConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.symbols: set[str] = set()
        self.limit_keys: list[str] = []
        self.tasks: list[asyncio.Task] = []
        self.batch = _batched(self.scope)
        self.send_frames = SEND_FRAMES in self.scope.get("extensions", {})
        self.closing = False
        self.fanout = fanout.for_loop(self.channel_layer)
        cfg = config.current_config()
        self.md = cfg.market_data
        user = None
        await self.accept()  # before any close: a close code and reason need an open WebSocket
        if not cfg.api.market_data_public:
            token = _token(self.scope)
            if not token:
                return await self.close(CLOSE_UNAUTHORIZED, "authentication required: ?token= or Authorization: Bearer")
            try:
                claims = ClaimsToken(token).payload
            except TokenError:
                return await self.close(CLOSE_UNAUTHORIZED, "invalid or expired token")
            if not {"market_data", "admin"} & set(claims.get("permissions") or ()):  # as REST's MarketDataAccess
                return await self.close(CLOSE_FORBIDDEN, "the token lacks the market_data permission")
            user = claims["user_id"]
        ip = (self.scope.get("client") or ("unknown",))[0]
        limits = {f"ip:{ip}": self.md.max_connections_per_ip}
        if user:
            limits[f"user:{user}"] = self.md.max_connections_per_user
        self.limit_keys = list(limits)
        counts = await asyncio.to_thread(connections.count_and_add, self.limit_keys, self.channel_name)
        over = [k for k, n in counts.items() if n > limits[k]]
        if over:
            return await self.close(CLOSE_TOO_MANY, f"too many connections for this {over[0].split(':')[0]}")
        self.outbox = Outbox(self.md.max_backlog)
        self.tasks = [asyncio.create_task(self._writer()), asyncio.create_task(self._refresh())]
        await self._send({"type": "welcome", "message": "Opitios market data", "max_symbols": self.md.max_symbols_per_connection,
                          "timestamp": protocol.now_iso()})

    async def disconnect(self, code) -> None:
        for task in self.tasks:
            task.cancel()
        for symbol in self.symbols:
            await self.fanout.discard(symbol, self)
        if self.symbols:
            await self.channel_layer.send(HUB_CHANNEL, {"type": "hub.wants", "conn": self.channel_name, "symbols": []})
        if self.limit_keys:
            await asyncio.to_thread(connections.remove, self.limit_keys, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        try:
            msg = json.loads(raw) if len(raw) <= MAX_MESSAGE_BYTES else None
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            return await self._send({"type": "error", "code": "invalid_message", "message": "expected a JSON object with a type"})
        kind = msg.get("type")
        if kind == "ping":
            return await self._send({"type": "pong", "timestamp": protocol.now_iso(),
                                     "stream": status.summary(await asyncio.to_thread(status.read))})
        if kind not in ("subscribe", "unsubscribe"):
            return await self._send({"type": "error", "code": "unknown_type", "message": "type must be subscribe, unsubscribe or ping"})
        symbols = msg.get("symbols")
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            return await self._send({"type": "error", "code": "invalid_symbols", "message": "symbols must be a list of strings"})
        symbols = list(dict.fromkeys(s.strip().upper() for s in symbols))
        await (self._subscribe(symbols) if kind == "subscribe" else self._unsubscribe(symbols))

    async def _subscribe(self, symbols: list[str]) -> None:
        added, rejected = [], {}
        for s in symbols:
            if protocol.data_type(s) is None:
                rejected[s] = "invalid_symbol"
            elif s in self.symbols:
                continue
            elif len(self.symbols) >= self.md.max_symbols_per_connection:
                rejected[s] = "max_symbols_per_connection"
            else:
                self.symbols.add(s)
                added.append(s)
                await self.fanout.add(s, self, self._deliver)
        await self._send(protocol.subscription_update(added, rejected, len(self.symbols)))
        if added:
            await self._announce()

    async def _unsubscribe(self, symbols: list[str]) -> None:
        removed = [s for s in symbols if s in self.symbols]
        for s in removed:
            self.symbols.discard(s)
            await self.fanout.discard(s, self)
        await self._send({"type": "unsubscribe_ack", "symbols": removed, "total_subscribed": len(self.symbols)})
        if removed:
            await self._announce()

    async def _announce(self) -> None:
        await self.channel_layer.send(HUB_CHANNEL, {"type": "hub.wants", "conn": self.channel_name, "symbols": sorted(self.symbols)})

    async def _refresh(self) -> None:
        """Tell the hub (perhaps a new leader) what this connection wants, and keep its limit slots alive."""
        while True:
            await asyncio.sleep(WANTS_REFRESH_SECONDS)
            if self.symbols:
                await self._announce()
            await asyncio.to_thread(connections.refresh, self.limit_keys, self.channel_name)

    # --- from the hub --------------------------------------------------------------------------
    def _deliver(self, symbol: str, trades: list[str], quote: str | None) -> None:
        """One symbol's messages of a hub fan-out round, already encoded (called by streaming/fanout.py)."""
        if self.closing:
            return
        if not self.outbox.push(symbol, trades, quote):
            self.closing = True
            self.tasks.append(asyncio.get_running_loop().create_task(self._too_slow()))  # held: not collected mid-close

    async def _too_slow(self) -> None:
        logger.warning("ws client %s too slow: %d trades queued, %d quotes conflated; closing", self.channel_name,
                       len(self.outbox.trades), self.outbox.conflated)
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        await self.close(CLOSE_SLOW, f"slow consumer: more than {self.outbox.max_backlog} messages queued")

    async def hub_rejected(self, event) -> None:
        rejected = {s: r for s, r in event["symbols"].items() if s in self.symbols}
        for s in rejected:
            self.symbols.discard(s)
            await self.fanout.discard(s, self)
        if rejected:
            await self._send(protocol.subscription_update([], rejected, len(self.symbols)))

    async def _writer(self) -> None:
        while True:
            texts = await self.outbox.wait()
            if self.batch:  # one frame for everything queued: the per-frame cost is most of the send path's
                await self.base_send({"type": "websocket.send", "text": f"[{','.join(texts)}]"})
                continue
            if self.send_frames:  # still one object per frame, in one write (streaming/serve.py)
                await self.base_send({"type": "websocket.send", "texts": texts})
                continue
            for text in texts:
                await self.base_send({"type": "websocket.send", "text": text})

    async def _send(self, message: dict) -> None:
        text = protocol.encode(message)
        await self.send(text_data=f"[{text}]" if self.batch else text)
