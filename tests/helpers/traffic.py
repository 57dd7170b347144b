"""A bounded background load for whole-stack fault tests: a few threads that send requests in a loop
and record every answer (or transport failure) with its time, until ``stop()`` or their deadline.

    with Traffic(stack, {"quote": quote_request, "order": order_request}, deadline=60) as traffic:
        ...break something...
    assert not traffic.where(status=500)
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

# A request factory returns (method, path, body, token) for the n-th request of its thread.
RequestFactory = Callable[[int], tuple[str, str, dict | None, str | None]]


@dataclass(frozen=True)
class Answer:
    kind: str
    at: float  # time.monotonic() when the request was sent
    elapsed: float
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)
    code: str  # the error body's code, or the transport error's class name
    retry_after: str | None


class Traffic:
    def __init__(self, stack, kinds: dict[str, RequestFactory], *, pause: float = 0.05, timeout: float = 15.0, deadline: float = 120.0) -> None:
        self.stack = stack
        self.kinds = kinds
        self.pause = pause
        self.timeout = timeout
        self.deadline = deadline
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _one(self, kind: str, method: str, path: str, body: dict | None, token: str | None) -> Answer:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.stack.url(path), data=json.dumps(body).encode() if body is not None else None,
                                         headers=headers, method=method)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw, retry_after = response.status, response.read(), response.headers.get("Retry-After")
        except urllib.error.HTTPError as exc:
            status, raw, retry_after = exc.code, exc.read(), exc.headers.get("Retry-After")
        except OSError as exc:
            return Answer(kind, started, time.monotonic() - started, 0, exc.__class__.__name__, None)
        code = ""
        if status >= 400:
            try:
                code = json.loads(raw)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "?"
        return Answer(kind, started, time.monotonic() - started, status, code, retry_after)

    def _loop(self, kind: str, factory: RequestFactory) -> None:
        end = time.monotonic() + self.deadline
        n = 0
        while not self._stop.is_set() and time.monotonic() < end:
            answer = self._one(kind, *factory(n))
            with self._lock:
                self.answers.append(answer)
            n += 1
            self._stop.wait(self.pause)

    def start(self) -> Traffic:
        for kind, factory in self.kinds.items():
            thread = threading.Thread(target=self._loop, args=(kind, factory), name=f"traffic-{kind}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        return self.answers

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- reading the record ------------------------------------------------------------------------
    def since(self, t: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.at >= t]

    def where(self, *, kind: str | None = None, status: int | None = None) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if (kind is None or a.kind == kind) and (status is None or a.status == status)]

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for a in self.answers:
                key = f"{a.status} {a.code}".strip()
                out.setdefault(a.kind, {}).setdefault(key, 0)
                out[a.kind][key] += 1
        return out
