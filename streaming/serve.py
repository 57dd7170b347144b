"""``python -m streaming.serve``: uvicorn serving /ws/market-data on ``OPITIOS_WS_PORT`` (8092).

Its own port, so WebSocket fan-out never competes with the REST API's gunicorn workers. One process:
on embedded defaults it also hosts the hub (streaming/asgi.py). WebSocket pings every
``market_data.heartbeat_seconds`` detect dead peers.
"""
from __future__ import annotations

import os

import django
import uvicorn


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.local")
    django.setup()
    from opitios.config import current_config

    heartbeat = current_config().market_data.heartbeat_seconds
    uvicorn.run(
        "streaming.asgi:application",
        host=os.environ.get("OPITIOS_WS_HOST", "127.0.0.1"),
        port=int(os.environ.get("OPITIOS_WS_PORT", "8092")),
        ws="websockets-sansio",  # send() waits while the socket is paused: a slow client backs up into its outbox
        ws_ping_interval=heartbeat,
        ws_ping_timeout=heartbeat,
        lifespan="on",
        # Django's logging (opitios/logging.py) handles uvicorn's records too: its filter masks the
        # ?token= JWT in the "WebSocket /ws/market-data?token=..." lines.
        log_config=None,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=10,  # open WebSockets are closed, not waited for
    )


if __name__ == "__main__":
    main()
