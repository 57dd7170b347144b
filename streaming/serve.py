"""``python -m streaming.serve``: uvicorn serving /ws/market-data on ``OPITIOS_WS_PORT`` (8092).

Its own port, so WebSocket fan-out never competes with the REST API's gunicorn workers. One process:
on embedded defaults it also hosts the hub (streaming/asgi.py). WebSocket pings every
``market_data.heartbeat_seconds`` detect dead peers.

The listening socket is bound here with a small send buffer (``SEND_BUFFER_BYTES``), which each accepted
connection inherits: the kernel's autotuning would otherwise hold up to 4 MB per client before a write
blocks, so a client that stops reading would sit on seconds to minutes of stale ticks before its
outbox (streaming/outbox.py) even saw it was slow. 64 KiB (the kernel doubles it) carries far more than a
client's market data per round trip.
"""
from __future__ import annotations

import os
import socket
import struct

import django
import uvicorn
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.protocol import State

SEND_BUFFER_BYTES = 64 * 1024
GRACEFUL_SHUTDOWN_SECONDS = 10  # open WebSockets are closed, not waited for; supervisors wait longer


# ASGI scope extension (the server offers it; streaming/consumers.py uses it when present): a
# {"type": "websocket.send", "texts": [...]} event sends each text as its own frame, all in one write.
SEND_FRAMES = "opitios.websocket.send_frames"


class FramesProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol, plus ``SEND_FRAMES``: a writer that wakes up with several
    messages queued for a client of the one-object-per-frame protocol hands them over at once, so they cost
    one ``socket.send`` and one trip through the ASGI send path, not one per frame (the per-frame send path
    was most of the ws process's CPU per message: docs/performance.md, "The fan-out's send path"). The frames
    on the wire are the same. Flow control is the parent's: the send waits while the transport is paused."""

    def handle_connect(self, event) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # not set when the handshake was rejected
        if scope is not None:
            scope["extensions"][SEND_FRAMES] = {}

    async def send(self, message) -> None:
        texts = message.get("texts") if message["type"] == "websocket.send" else None
        if texts is None:
            return await super().send(message)
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if not self.handshake_complete or self.close_sent or self.initial_response is not None:
            return await super().send({"type": "websocket.send", "text": ""})  # the parent's error for this state
        if self.conn.extensions:  # never with ws_per_message_deflate off; websockets frames them then
            try:
                for text in texts:
                    self.conn.send_text(text.encode())
            except InvalidState:
                raise ClientDisconnected() from None
            self.transport.write(b"".join(self.conn.data_to_send()))
            return
        if self.conn.state is not State.OPEN:
            raise ClientDisconnected()
        # A server's text frame is a two-to-ten-byte header and the payload, unmasked (RFC 6455 5.2): built here,
        # because websockets' Frame.serialize was 40% of the ws process's CPU (cProfile, bench.hub_fanout).
        out = self.conn.data_to_send()  # whatever websockets still holds goes first
        for text in texts:
            payload = text.encode()
            out.append(_text_header(len(payload)))
            out.append(payload)
        self.transport.write(b"".join(out))


def _text_header(length: int) -> bytes:
    if length < 126:
        return bytes((0x81, length))
    if length < 65536:
        return struct.pack("!BBH", 0x81, 126, length)
    return struct.pack("!BBQ", 0x81, 127, length)


def listening_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.local")
    django.setup()
    from opitios.config import current_config

    heartbeat = current_config().market_data.heartbeat_seconds
    host, port = os.environ.get("OPITIOS_WS_HOST", "127.0.0.1"), int(os.environ.get("OPITIOS_WS_PORT", "8092"))
    config = uvicorn.Config(
        "streaming.asgi:application",
        host=host,
        port=port,
        # websockets-sansio: send() waits while the socket is paused, so a slow client backs up into its outbox
        ws=FramesProtocol,
        ws_ping_interval=heartbeat,
        ws_ping_timeout=heartbeat,
        # Market-data frames are small JSON objects sent tens of thousands of times a second: compressing each
        # for each client cost more CPU than the fan-out itself (bench.hub_fanout profile, docs/streaming.md).
        ws_per_message_deflate=False,
        lifespan="on",
        # Django's logging (opitios/logging.py) handles uvicorn's records too: its filter masks the
        # ?token= JWT in the "WebSocket /ws/market-data?token=..." lines.
        log_config=None,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])


if __name__ == "__main__":
    main()
