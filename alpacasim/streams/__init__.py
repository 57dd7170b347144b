"""WebSocket streams: market data (stocks, options) and trade updates, with their /_sim/ controls."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from ..responses import SIM
from . import control
from .hub import StreamHub
from .market_data import data_stream
from .ticker import Ticker
from .trade_updates import broker_listener, trade_stream

__all__ = ["StreamHub", "register"]


async def _run_ticker(app: web.Application):
    hub = app[SIM].streams
    hub.ticker = Ticker(hub)
    task = asyncio.create_task(hub.ticker.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for conn in list(hub.connections):
        await conn.aclose()


def register(app: web.Application) -> None:
    sim = app[SIM]
    sim.broker.listeners.append(broker_listener(sim.streams))
    r = app.router
    r.add_get("/{family:v2|v1beta1}/{feed:[a-z]+}", data_stream)
    r.add_get("/{scope:paper|live}/stream", trade_stream)
    control.register(app)
    app.cleanup_ctx.append(_run_ticker)
