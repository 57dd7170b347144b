"""Issue 12: request-size limits through gunicorn as `make run` starts it.

gunicorn refuses an oversized request line or header itself (opitios/gunicorn.conf.py); what it lets
through and Django refuses answers with the JSON error body.
"""
import http.client
import json
import socket

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _raw(stack, method: str, path: str, *, headers: dict | None = None, body: bytes | None = None) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", stack.web_port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def _oversized_post(stack, path: str, body: bytes) -> tuple[int, str, bytes]:
    """The server answers before the body is read and closes; read its answer as curl would."""
    with socket.create_connection(("127.0.0.1", stack.web_port), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
        try:
            sock.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.getheader("Content-Type", ""), response.read()


def test_gunicorn_limits_and_json_refusals_behind_them(stack_factory):
    stack = stack_factory(processes=("web",))
    status, _, _ = _raw(stack, "GET", "/api/v1/health?pad=" + "x" * 9000)
    assert status == 414
    status, _, _ = _raw(stack, "GET", "/api/v1/health", headers={f"X-Pad-{i}": "1" for i in range(60)})
    assert status in (400, 431)  # gunicorn: too many header fields
    status, _, _ = _raw(stack, "GET", "/api/v1/health", headers={"X-Pad": "x" * 9000})
    assert status in (400, 431)
    # within gunicorn's limits, Django's: a 10 MB body is a JSON 413, not a 500
    body = json.dumps({"symbols": ["AAPL"], "pad": "x" * 10_000_000}).encode()
    status, content_type, payload = _oversized_post(stack, "/api/v1/stocks/quotes/batch", body)
    assert (status, content_type) == (413, "application/json"), payload[:300]
    assert json.loads(payload)["error"]["code"] == "request_too_large"
    assert stack.get("/api/v1/health")[0] == 200
