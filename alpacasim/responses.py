"""JSON responses and the app key shared by the route modules."""

from __future__ import annotations

import json

from aiohttp import web

from . import errors

SIM: web.AppKey = web.AppKey("sim")
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def json_response(obj, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(
        body=_dumps(obj).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def error_response(exc: errors.SimError, headers: dict | None = None) -> web.Response:
    return json_response(exc.body(), status=exc.status, headers=headers)


async def read_json(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise errors.malformed("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise errors.malformed("request body must be a JSON object")
    return body
