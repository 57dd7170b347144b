"""The first middleware holds log lines written during a request and appends the request's total; they are
written when the server closes the response, after sending it."""
import logging
import time
from datetime import UTC, datetime

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from opitios.request_timing import RequestTimingMiddleware, log_after_response

log = logging.getLogger("tests.request_timing")


@pytest.fixture
def no_db_signals():
    """Django's request signals without close_old_connections, as its test client does: the test owns the connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_a_line_is_held_until_the_response_is_sent_and_carries_the_total(caplog, no_db_signals):
    caplog.set_level(logging.INFO)
    emitted_during_view = []

    def view(request):
        log_after_response(log, logging.INFO, "order client_order_id=%s", "c-1")
        emitted_during_view.extend(r.getMessage() for r in caplog.records)
        return HttpResponse("ok", status=201)

    response = RequestTimingMiddleware(view)(RequestFactory().post("/api/v1/stocks/order"))
    assert emitted_during_view == []
    assert caplog.records == []  # the server has not sent the response yet
    response.close()  # what the server does once it has
    total = response["Server-Timing"].removeprefix("app;dur=")
    assert [r.getMessage() for r in caplog.records] == [f"order client_order_id=c-1 request_total_ms={total}"]


def test_outside_a_request_the_line_is_written_at_once(caplog):
    caplog.set_level(logging.INFO)
    log_after_response(log, logging.WARNING, "sweep order client_order_id=%s", "s-1")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.WARNING, "sweep order client_order_id=s-1")]


def test_a_view_that_raises_still_writes_its_held_lines(caplog):
    caplog.set_level(logging.INFO)

    def view(request):
        log_after_response(log, logging.ERROR, "order failed client_order_id=%s", "c-2")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        RequestTimingMiddleware(view)(RequestFactory().get("/x"))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and messages[0].startswith("order failed client_order_id=c-2 request_total_ms=")


def test_the_wsgi_wrapper_stamps_the_receive_time_before_djangos_handler(no_db_signals):
    """opitios/wsgi.py: the clock starts before Django's handler (request_started, the request object, middleware)."""
    from django.core.signals import request_started

    from opitios.request_timing import RECEIVED_AT, RECEIVED_PERF
    from opitios.wsgi import application

    handler_started = []

    def started(**kwargs):
        handler_started.append(time.perf_counter())

    environ = RequestFactory().get("/api/v1/live").environ
    statuses = []
    request_started.connect(started)
    try:
        body = b"".join(application(environ, lambda status, headers: statuses.append((status, headers))))
    finally:
        request_started.disconnect(started)
    assert body and statuses[0][0].startswith("200")
    assert environ[RECEIVED_PERF] <= handler_started[0]
    assert environ[RECEIVED_AT].tzinfo is not None
    dur = float(dict(statuses[0][1])["Server-Timing"].removeprefix("app;dur="))
    # The request's total runs from the wrapper's stamp, not from the first middleware.
    assert dur >= (handler_started[0] - environ[RECEIVED_PERF]) * 1000


def test_the_middleware_takes_the_wrappers_stamps():
    request = RequestFactory().get("/x")
    request.META["opitios.received_perf"] = time.perf_counter() - 0.5
    request.META["opitios.received_at"] = stamped_at = datetime.now(UTC)
    seen = []

    def view(r):
        seen.append((r.received_perf, r.received_at))
        return HttpResponse("ok")

    response = RequestTimingMiddleware(view)(request)
    assert seen == [(request.META["opitios.received_perf"], stamped_at)]
    assert float(response["Server-Timing"].removeprefix("app;dur=")) >= 500
