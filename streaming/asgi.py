"""The ASGI application of ``/ws/market-data`` (served by ``python -m streaming.serve``).

On embedded defaults (no Redis) the channel layer lives in this process, so the hub runs here too,
started and stopped with the server (ASGI lifespan). With Redis the hub is its own supervised process
(``manage.py run_hub``) and this process only serves clients.
"""
from __future__ import annotations

import asyncio
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.local")
django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import path  # noqa: E402

from streaming.consumers import MarketDataConsumer  # noqa: E402
from streaming.hub import Hub  # noqa: E402


async def lifespan(scope, receive, send) -> None:
    hub_task = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if not settings.REDIS_URL:
                hub_task = asyncio.create_task(Hub().run())
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if hub_task is not None:
                hub_task.cancel()
                await asyncio.gather(hub_task, return_exceptions=True)
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter({
    "http": get_asgi_application(),
    "websocket": URLRouter([path("ws/market-data", MarketDataConsumer.as_asgi())]),
    "lifespan": lifespan,
})
