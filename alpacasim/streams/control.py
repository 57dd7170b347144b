"""/_sim/streams: connection counts, tick rates and the symbol limit, and stream faults."""

from __future__ import annotations

from aiohttp import web

from ..responses import SIM, json_response, read_json
from .faults import parse_stream_fault


async def state(request: web.Request) -> web.Response:
    return json_response(request.app[SIM].streams.as_json())


async def configure(request: web.Request) -> web.Response:
    hub = request.app[SIM].streams
    hub.configure(await read_json(request))
    return json_response(hub.as_json())


async def inject(request: web.Request) -> web.Response:
    hub = request.app[SIM].streams
    fault = parse_stream_fault(await read_json(request))
    touched = hub.inject(fault)
    return json_response({**hub.as_json(), "action": fault.action, "feed": fault.feed, "touched": touched})


async def clear(request: web.Request) -> web.Response:
    hub = request.app[SIM].streams
    hub.clear_faults()
    return json_response(hub.as_json())


async def status(request: web.Request) -> web.Response:
    hub = request.app[SIM].streams
    return json_response({"sent_to": hub.send_status(await read_json(request))})


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/_sim/streams", state)
    r.add_post("/_sim/streams/config", configure)
    r.add_post("/_sim/streams/faults", inject)
    r.add_post("/_sim/streams/faults/clear", clear)
    r.add_post("/_sim/streams/status", status)
