"""The first middleware holds log lines written during a request and appends the request's total."""
import logging

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from opitios.request_timing import RequestTimingMiddleware, log_after_response

log = logging.getLogger("tests.request_timing")


def test_a_line_is_held_until_the_response_is_built_and_carries_the_total(caplog):
    caplog.set_level(logging.INFO)
    emitted_during_view = []

    def view(request):
        log_after_response(log, logging.INFO, "order client_order_id=%s", "c-1")
        emitted_during_view.extend(r.getMessage() for r in caplog.records)
        return HttpResponse("ok", status=201)

    response = RequestTimingMiddleware(view)(RequestFactory().post("/api/v1/stocks/order"))
    assert emitted_during_view == []
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
