"""The trade-updates stream of one account, over a websocket (Alpaca's trading-stream protocol:
authenticate, listen to ``trade_updates``, then one JSON message per order event).

Written over ``websockets`` rather than alpaca-py's ``TradingStream``: that client reconnects by itself
with no hook, and the listener must know every reconnect to reconcile the gap over REST
(docs/architecture.md, "Order lifecycle")."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import websockets
from django.conf import settings

from accounts import crypto
from accounts.broker.contract import BrokerRejected, BrokerUnavailable, TradeUpdate
from accounts.broker.convert import trade_update_from_json

CONNECT_TIMEOUT = 10.0
# Alpaca's trading stream is quiet between orders; websocket pings tell a dead TCP connection apart.
PING_INTERVAL = 15.0
# No permessage-deflate: an order's events are a few small JSON messages, and a compression context per
# connection costs both ends CPU on every message and memory on each of up to 1,000 connections
# (docs/performance.md, "The trade stream without compression").
COMPRESSION = None


@dataclass(frozen=True)
class StreamTarget:
    """Where and as whom one account listens. ``fingerprint`` changes when the keys or endpoint do."""

    pk: int
    account_id: str
    url: str
    api_key: str
    secret_key: str
    fingerprint: tuple

    def __repr__(self) -> str:  # never the keys
        return f"<StreamTarget {self.account_id} {self.url}>"


def stream_url(trading_url: str) -> str:
    """``http(s)://host/paper`` -> ``ws(s)://host/paper/stream`` (Alpaca: ``wss://paper-api.alpaca.markets/stream``)."""
    parts = urlsplit(trading_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/stream", "", ""))


def stream_target(row: dict, *, register: bool = True) -> StreamTarget:
    """``row``: an account's pk, account_id, paper_trading and encrypted keys (a ``values()`` row).
    ``register=False`` when the caller registers a whole batch of keys with the log masker at once."""
    url = stream_url(settings.ALPACA_PAPER_URL if row["paper_trading"] else settings.ALPACA_LIVE_URL)
    return StreamTarget(
        pk=row["pk"], account_id=row["account_id"], url=url,
        api_key=crypto.decrypt(row["api_key_encrypted"], register=register),
        secret_key=crypto.decrypt(row["secret_key_encrypted"], register=register),
        fingerprint=(row["api_key_encrypted"], row["secret_key_encrypted"], url),
    )


class TradeStream:
    """One connection: ``async with TradeStream(target) as s: async for update in s.updates(): ...``.
    Connection failures raise ``BrokerUnavailable``; refused credentials ``BrokerRejected``."""

    def __init__(self, target: StreamTarget) -> None:
        self.target = target
        self._ws = None

    async def __aenter__(self) -> TradeStream:
        try:
            self._ws = await websockets.connect(self.target.url, open_timeout=CONNECT_TIMEOUT, ping_interval=PING_INTERVAL,
                                                ping_timeout=PING_INTERVAL, max_size=2**22, close_timeout=2,
                                                compression=COMPRESSION)
            await self._send({"action": "authenticate", "data": {"key_id": self.target.api_key, "secret_key": self.target.secret_key}})
            reply = await self._expect("authorization")
            if reply.get("status") != "authorized":
                raise BrokerRejected(f"trade stream of {self.target.account_id}: not authorized")
            await self._send({"action": "listen", "data": {"streams": ["trade_updates"]}})
            await self._expect("listening")
        except BrokerRejected:
            await self.aclose()
            raise
        except (OSError, TimeoutError, ValueError, websockets.WebSocketException) as exc:
            await self.aclose()
            raise BrokerUnavailable(f"trade stream of {self.target.account_id}: {exc.__class__.__name__}") from None
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._ws is not None:
            ws, self._ws = self._ws, None
            await ws.close()

    async def _send(self, msg: dict) -> None:
        await self._ws.send(json.dumps(msg))

    async def _expect(self, stream: str) -> dict:
        while True:
            msg = json.loads(await self._ws.recv())
            if msg.get("stream") == stream:
                return msg.get("data") or {}
            if msg.get("stream") == "error":
                raise BrokerRejected(f"trade stream of {self.target.account_id}: {msg.get('data', {}).get('error_message', '')}")

    async def updates(self) -> AsyncIterator[TradeUpdate]:
        """Until the connection ends (then ``BrokerUnavailable``). A frame that does not decode is skipped."""
        try:
            async for frame in self._ws:
                received_at = datetime.now(UTC)
                try:
                    msg = json.loads(frame)
                    if msg.get("stream") != "trade_updates":
                        continue
                    update = trade_update_from_json(msg["data"], received_at=received_at)
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
                yield update
        except (OSError, websockets.WebSocketException) as exc:
            raise BrokerUnavailable(f"trade stream of {self.target.account_id}: {exc.__class__.__name__}") from None
        raise BrokerUnavailable(f"trade stream of {self.target.account_id}: closed")
