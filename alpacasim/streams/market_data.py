"""The market-data streams: stocks at /v2/{feed}, options at /v1beta1/{feed}, in Alpaca's protocol.

connected -> auth -> subscribe/unsubscribe with the subscription echo; errors as ``[{"T": "error", ...}]``.
msgpack when the handshake says ``Content-Type: application/msgpack`` (alpaca-py always does), else JSON.
"""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

from ..market import is_stock_symbol, parse_occ
from ..responses import SIM
from . import protocol
from .connection import Connection

_CLOSING = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


def _valid_symbol(options: bool, symbol: object) -> bool:
    if not isinstance(symbol, str):
        return False
    if symbol == "*":
        return not options  # Alpaca has no wildcard for option quotes and trades
    return parse_occ(symbol) is not None if options else is_stock_symbol(symbol)


def subscription_echo(conn: Connection, options: bool) -> list[dict]:
    channels = protocol.OPTION_CHANNELS if options else protocol.STOCK_CHANNELS
    msg = {"T": "subscription"}
    for ch in channels:
        msg[ch] = sorted(conn.subs.get(ch, ()))
    if not options:
        for ch in protocol.TRADE_FOLLOWERS:
            msg[ch] = list(msg["trades"])
    return [msg]


def _apply(conn: Connection, hub, options: bool, action: str, msg: dict) -> list[dict]:
    """(Un)subscribe; returns the frame to send: the echo, or an error leaving the subscription as it was."""
    allowed = protocol.OPTION_CHANNELS if options else protocol.STOCK_CHANNELS
    changes: dict[str, set[str]] = {}
    for key, value in msg.items():
        if key == "action" or key in protocol.TRADE_FOLLOWERS:
            continue
        if key not in allowed:
            if key in protocol.STOCK_CHANNELS:
                return protocol.error(410)
            return protocol.error(400, f"unknown channel {key!r}")
        if not isinstance(value, list):
            return protocol.error(400, f"{key} must be a list of symbols")
        symbols = set()
        for s in value:
            if not _valid_symbol(options, s):
                return protocol.error(400, f"invalid symbol {s!r}")
            symbols.add(s)
        changes[key] = symbols
    new = {ch: set(conn.subs.get(ch, ())) for ch in allowed}
    for ch, symbols in changes.items():
        if action == "subscribe":
            new[ch] |= symbols
        else:
            new[ch] -= symbols
    if action == "subscribe" and hub.symbol_limit:
        distinct = set().union(*new.values())
        if len(distinct) > hub.symbol_limit:
            return protocol.error(405)
    conn.subs = new
    return subscription_echo(conn, options)


async def data_stream(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    hub = sim.streams
    family, feed_name = request.match_info["family"], request.match_info["feed"]
    options = family == "v1beta1"
    if feed_name not in (protocol.OPTION_FEEDS if options else protocol.STOCK_FEEDS):
        raise web.HTTPNotFound()
    feed = f"{family}/{feed_name}"
    refused = hub.faults.take_refusal(feed)
    if refused is not None:
        return web.Response(status=refused, text="connection refused (injected fault)")
    ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
    await ws.prepare(request)
    use_msgpack = "msgpack" in request.headers.get("Content-Type", "")
    encode = protocol.encode_msgpack if use_msgpack else protocol.encode_json
    conn = Connection(hub, ws, request, feed, encode, binary=use_msgpack)
    hub.add(conn)
    try:
        if options and not use_msgpack:
            await conn.close_after_flush(protocol.error(412))
            return ws
        conn.send([{"T": "success", "msg": "connected"}])
        await _serve(conn, hub, sim, options)
    finally:
        hub.remove(conn)
        await conn.aclose()
    return ws


async def _serve(conn: Connection, hub, sim, options: bool) -> None:
    ws = conn.ws
    auth_deadline = asyncio.get_running_loop().time() + hub.auth_timeout
    while True:
        timeout = None
        if conn.key is None:
            timeout = max(0.0, auth_deadline - asyncio.get_running_loop().time())
        try:
            frame = await ws.receive(timeout=timeout)
        except TimeoutError:
            await conn.close_after_flush(protocol.error(404))
            return
        if frame.type in _CLOSING:
            return
        try:
            msg = protocol.decode(frame.data)
        except ValueError:
            conn.send(protocol.error(400))
            continue
        if not isinstance(msg, dict):
            conn.send(protocol.error(400))
            continue
        action = msg.get("action")
        if action == "auth":
            if conn.key is not None:
                conn.send(protocol.error(403))
                continue
            key, secret = msg.get("key"), msg.get("secret")
            acct = sim.broker.authenticate(
                key if isinstance(key, str) else None, secret if isinstance(secret, str) else None
            )
            if acct is None:
                await conn.close_after_flush(protocol.error(402))
                return
            if hub.authenticated(conn.feed, acct.api_key) >= 1:
                await conn.close_after_flush(protocol.error(406))
                return
            conn.key = acct.api_key
            conn.send([{"T": "success", "msg": "authenticated"}])
        elif action in ("subscribe", "unsubscribe"):
            if conn.key is None:
                conn.send(protocol.error(401))
                continue
            conn.send(_apply(conn, hub, options, action, msg))
        else:
            conn.send(protocol.error(400, f"unknown action {action!r}"))
