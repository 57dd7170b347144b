"""Run alpaca-py's stream clients against alpacasim in a thread, and wait for what they receive.

Handlers and the clients' own log records go into one queue, in the order the client saw them, so a
test can wait for "the subscription echo, then ticks" without sleeping. Fixture: ``streams`` (a
factory of started runners, all stopped at teardown, the server's connections drained).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time

import pytest
from alpaca.data.live.option import OptionDataStream
from alpaca.data.live.stock import StockDataStream
from alpaca.trading.stream import TradingStream


class _Collector(logging.Handler):
    def __init__(self, runner: StreamRunner) -> None:
        super().__init__(logging.DEBUG)
        self.runner = runner

    def emit(self, record: logging.LogRecord) -> None:
        if threading.get_ident() == self.runner.thread_id:
            self.runner.events.put(("log", record.getMessage()))


class StreamRunner:
    def __init__(self, client) -> None:
        self.client = client
        self.events: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread_id: int | None = None
        self._log = _Collector(self)

    async def handler(self, item) -> None:
        self.events.put(("data", item))

    def _run(self) -> None:
        self.thread_id = threading.get_ident()
        asyncio.run(self.client._run_forever())

    def start(self) -> StreamRunner:
        logger = logging.getLogger("alpaca")
        logger.addHandler(self._log)
        logger.setLevel(logging.INFO)
        self.thread.start()
        deadline = time.monotonic() + 10
        while self.client._loop is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        client, loop = self.client, self.client._loop

        async def halt() -> None:
            await client.stop_ws()
            await client.close()  # now, rather than after the client's 5 s receive timeout

        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(halt(), loop).result(timeout=5)
        self.thread.join(timeout=15)
        logging.getLogger("alpaca").removeHandler(self._log)

    def next(self, predicate=lambda kind, item: kind == "data", timeout: float = 15.0):
        """The next event (kind, item) matching ``predicate``; events before it are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching stream event within {timeout}s")
            try:
                kind, item = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if predicate(kind, item):
                return item

    def data(self, predicate=lambda item: True, timeout: float = 15.0):
        return self.next(lambda k, i: k == "data" and predicate(i), timeout)

    def log(self, text: str, timeout: float = 15.0) -> str:
        return self.next(lambda k, i: k == "log" and text in i, timeout)

    def collect_until(self, predicate, timeout: float = 15.0) -> list:
        """Every event up to and including the first that matches."""
        out = []
        self.next(lambda k, i: out.append((k, i)) or predicate(k, i), timeout)
        return out


def wait_for(condition, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout}s")


def connections(sim) -> dict:
    return sim.control("GET", "/_sim/streams")["connections"]


@pytest.fixture
def streams(sim):
    runners: list[StreamRunner] = []

    from tests.alpacasim.conftest import PAPER_KEY, PAPER_SECRET  # here: that conftest imports this module

    def make(kind: str = "stock", key=PAPER_KEY, secret=PAPER_SECRET, path: str | None = None, **kw) -> StreamRunner:
        ws = sim.base_url.replace("http://", "ws://")
        if kind == "stock":
            client = StockDataStream(key, secret, url_override=ws + (path or "/v2/iex"), **kw)
        elif kind == "option":
            client = OptionDataStream(key, secret, url_override=ws + (path or "/v1beta1/indicative"), **kw)
        else:
            client = TradingStream(key, secret, url_override=ws + (path or "/paper/stream"), **kw)
        client._reconnect_min_backoff = 0.2  # keep reconnect tests short; the protocol is unchanged
        runner = StreamRunner(client)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.stop()
    sim.control("POST", "/_sim/streams/faults/clear", {})
    wait_for(lambda: not connections(sim), what="all stream connections closed")
