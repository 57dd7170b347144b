"""Alerts in tests: a webhook receiver the test starts (Apprise ``json://``), and the fixtures every alert
test shares (a pytest plugin, registered in tests/conftest.py)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Receiver:
    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                if receiver.fail_next:
                    receiver.fail_next -= 1
                    receiver.messages.append({"failed": True, **body})
                    self.send_response(500)
                else:
                    receiver.messages.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def delivered(self) -> list[dict]:
        return [m for m in self.messages if not m.get("failed")]

    def wait(self, count: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.delivered()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.delivered()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def alert_holds(monkeypatch) -> list[tuple]:
    """Alerts sent at once (eager Celery); each resolve hold's countdown is captured, for the test to run the
    held task by hand (``alerts.resolve_after_hold(*holds[-1])``)."""
    from opitios import alerts
    from opitios.celery import app as celery_app

    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    holds: list[tuple] = []
    monkeypatch.setattr(alerts.resolve_after_hold, "apply_async", lambda args, countdown: holds.append(args))
    return holds
