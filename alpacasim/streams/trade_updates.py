"""Trade updates at /paper/stream and /live/stream, in Alpaca's trading-stream protocol.

authenticate -> {"stream": "authorization", ...}; listen -> {"stream": "listening", ...}; then one
{"stream": "trade_updates", "data": {...}} per order event, in the order the broker emitted them. Frames
are JSON in binary WebSocket frames, as Alpaca's paper endpoint sends them.
"""

from __future__ import annotations

import json
from datetime import datetime

from aiohttp import WSMsgType, web

from ..market import iso_z
from ..responses import SIM
from ..serializers import _s, order_json
from .connection import Connection

_CLOSING = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
STREAMS = ("trade_updates",)


def encode(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _authorization(action: str, ok: bool) -> dict:
    return {"stream": "authorization", "data": {"action": action, "status": "authorized" if ok else "unauthorized"}}


def trade_update(event: str, order, extra: dict, now: datetime) -> dict:
    """The ``data`` of one trade update; built when the event happens, so later changes do not leak in."""
    stamp = extra.get("timestamp") or order.updated_at or now
    data = {"event": event, "timestamp": iso_z(stamp), "order": order_json(order)}
    if "price" in extra:
        data.update(
            price=_s(extra["price"]),
            qty=_s(extra["qty"]),
            position_qty=_s(extra["position_qty"]),
            execution_id=extra["execution_id"],
        )
    return {"stream": "trade_updates", "data": data}


def broker_listener(hub):
    """Subscribe the open trade streams to the broker's order events."""

    def on_event(event: str, order, extra: dict) -> None:
        targets = [c for c in hub.connections if c.listening and c.key == order.account_key]
        if targets:
            msg = trade_update(event, order, extra, hub.clock.now())
            for conn in targets:
                conn.send(msg)

    return on_event


async def trade_stream(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    hub = sim.streams
    scope = request.match_info["scope"]
    feed = f"{scope}/stream"
    refused = hub.faults.take_refusal(feed)
    if refused is not None:
        return web.Response(status=refused, text="connection refused (injected fault)")
    ws = web.WebSocketResponse(max_msg_size=1024 * 1024)
    await ws.prepare(request)
    conn = Connection(hub, ws, request, feed, encode, binary=True)
    hub.add(conn)
    try:
        await _serve(conn, sim, scope)
    finally:
        hub.remove(conn)
        await conn.aclose()
    return ws


def _error(message: str) -> dict:
    return {"stream": "error", "data": {"error_message": message}}


async def _serve(conn: Connection, sim, scope: str) -> None:
    async for frame in conn.ws:
        if frame.type in _CLOSING:
            return
        try:
            msg = json.loads(frame.data)
        except (ValueError, TypeError):
            conn.send(_error("invalid syntax: frames are JSON objects"))
            continue
        if not isinstance(msg, dict):
            conn.send(_error("invalid syntax: frames are JSON objects"))
            continue
        action, data = msg.get("action"), msg.get("data")
        data = data if isinstance(data, dict) else {}
        if action in ("authenticate", "auth"):
            key, secret = data.get("key_id"), data.get("secret_key")
            acct = sim.broker.authenticate(
                key if isinstance(key, str) else None, secret if isinstance(secret, str) else None
            )
            if acct is None or acct.paper != (scope == "paper"):
                await conn.close_after_flush(_authorization("authenticate", False))
                return
            conn.key = acct.api_key
            conn.send(_authorization("authenticate", True))
        elif action == "listen":
            if conn.key is None:
                conn.send(_authorization("listen", False))
                continue
            streams = data.get("streams")
            if not isinstance(streams, list):
                conn.send(_error("invalid syntax: listen needs data.streams, a list"))
                continue
            conn.listening = "trade_updates" in streams
            conn.send({"stream": "listening", "data": {"streams": [s for s in streams if s in STREAMS]}})
        else:
            conn.send(_error(f"unknown action {action!r}"))
