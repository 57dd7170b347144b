"""When a request arrived, and how long the process took to answer it (docs/architecture.md, "Order timing").

``stamp_received`` wraps the WSGI application (opitios/wsgi.py): it stamps the receive time in the
WSGI environ before Django's handler runs (its ``request_started`` signal, the request object, the
middleware). ``RequestTimingMiddleware``, the first middleware, takes those stamps as
``request.received_at`` (UTC, µs) and ``request.received_perf`` (``time.perf_counter()``), or stamps them
itself when nothing did (the test client, ASGI), and after the response is built (rendered, every
database write done) it measures ``request_total_ms``: the time the process controls, up to handing
the response back to Django's handler. Before it: the server's (gunicorn's) wake-up, hand-off to a
thread and HTTP parsing; after it: Django's handler converting the response and the socket write.

Every response carries it as ``Server-Timing: app;dur=<ms>`` and is counted in ``opitios_http_requests`` by
its URL pattern and status class (the desk's traffic monitor reads it); the order routes (marked with
``time_request``) also export it as ``opitios_order_request_total_seconds``. A log line written during the
request with ``log_after_response`` is held and gets `` request_total_ms=<ms>`` appended (outside a
request it is written at once); a marked request that held no line gets one of its own. The held
lines and the metrics are written when the server closes the response, after it has sent it. Within the request, ``current_config()`` reads the configuration file once (``config_per_request``).
"""
from __future__ import annotations

import contextvars
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from opitios import metrics
from opitios.config import config_per_request

logger = logging.getLogger("opitios.requests")


@dataclass
class _Held:
    lines: list[tuple[logging.Logger, int, str, tuple]] = field(default_factory=list)
    timed: bool = False


_held: contextvars.ContextVar[_Held | None] = contextvars.ContextVar("opitios_request_timing", default=None)


def log_after_response(log: logging.Logger, level: int, msg: str, *args) -> None:
    """``log.log(level, msg, *args)``, held until the response is built when inside a timed request."""
    held = _held.get()
    if held is None:
        log.log(level, msg, *args)
    else:
        held.lines.append((log, level, msg, args))


def time_request() -> None:
    """Log this request's ``request_total_ms`` even if it holds no line of its own."""
    held = _held.get()
    if held is not None:
        held.timed = True


RECEIVED_PERF = "opitios.received_perf"
RECEIVED_AT = "opitios.received_at"


def stamp_received(app):
    """The outermost WSGI callable: stamps the receive time before Django's handler sees the request."""

    def application(environ, start_response):
        environ[RECEIVED_PERF] = time.perf_counter()
        environ[RECEIVED_AT] = datetime.now(UTC)
        return app(environ, start_response)

    return application


def elapsed_ms(started_perf: float) -> float:
    return round((time.perf_counter() - started_perf) * 1000, 3)


class RequestTimingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        if RECEIVED_PERF in meta:
            request.received_perf, request.received_at = meta[RECEIVED_PERF], meta[RECEIVED_AT]
        else:
            request.received_perf, request.received_at = time.perf_counter(), datetime.now(UTC)
        held = _Held()
        token = _held.set(held)
        try:
            with config_per_request():
                response = self.get_response(request)
        except BaseException:  # the handler raised: Django's own handler answers 500
            _held.reset(token)
            _write_down(request, held, 500, elapsed_ms(request.received_perf))
            raise
        _held.reset(token)
        total = elapsed_ms(request.received_perf)
        response["Server-Timing"] = f"app;dur={total}"
        # The held lines and the metrics are written once the server has sent the response: it calls the
        # response's close() after the socket write (WSGI; Django's test client and ASGI handler do too), and
        # close() runs these closers. About 0.2 ms per order less before the client has its answer.
        response._resource_closers.append(partial(_write_down, request, held, response.status_code, total))
        return response


def _write_down(request, held: _Held, status: int, total: float) -> None:
    for log, level, msg, args in held.lines:
        log.log(level, msg + " request_total_ms=%s", *args, total)
    match = getattr(request, "resolver_match", None)
    metrics.request_observed(match.route if match is not None else "unmatched", status)
    if held.timed:
        metrics.order_request_total.observe(total / 1000)
    if held.timed and not held.lines:
        logger.info("request method=%s path=%s status=%s request_total_ms=%s", request.method, request.path, status, total)
