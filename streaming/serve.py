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

import django
import uvicorn

SEND_BUFFER_BYTES = 64 * 1024
GRACEFUL_SHUTDOWN_SECONDS = 10  # open WebSockets are closed, not waited for; supervisors wait longer


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
        ws="websockets-sansio",  # send() waits while the socket is paused: a slow client backs up into its outbox
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
