"""The listener running for real in a thread of the test process, against a running alpacasim; accounts are
rows like the demo's (their keys are alpacasim's)."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
from django.core.cache import cache

from accounts import broker as broker_seam
from lifecycle.health import trade_updates_section
from lifecycle.listener import Listener, shard_key
from tests.accounts.factories import demo_account
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from tests.helpers.sim_streams import wait_for
from tests.trading.conftest import config_file  # noqa: F401 - fixture


class ListenerThread:
    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs
        self.listener: Listener | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="test-listener")
        self.started = threading.Event()

    def _run(self) -> None:
        async def main():
            self.loop = asyncio.get_running_loop()
            self.listener = Listener(**self.kwargs)
            self.started.set()
            await self.listener.run()

        asyncio.run(main())

    def start(self) -> ListenerThread:
        cache.delete(shard_key(self.kwargs.get("shard_index", 0)))
        self.thread.start()
        assert self.started.wait(10)
        return self

    def stop(self) -> None:
        if self.loop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.listener.stop)
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "listener did not stop"

    def health(self) -> dict:
        return trade_updates_section()

    def streams(self) -> dict:
        """Each stream's own state, read from the listener itself (for a failure's message)."""
        return {s.target.account_id: {"connected": s.connected, "reconnects": s.reconnects, "events": s.events,
                                      "done": s.task.done() if s.task else None}
                for s in list(self.listener.streams.values())}

    def wait_connected(self, n: int, timeout: float = 30.0) -> None:
        """This listener's own figures show ``n`` streams connected, in a snapshot published after this call
        began: one published before a drop the listener had not yet seen would pass on stale figures."""
        since = time.time()

        def ready():
            mine = cache.get(shard_key(self.listener.shard_index)) or {}
            return (mine.get("node") == self.listener.node and mine.get("at", 0) >= since
                    and mine["connected"] == n and mine["expected"] == n)

        wait_for(ready, timeout=timeout, what=f"{n} trade streams connected")


@pytest.fixture
def sim_urls(sim, settings):  # noqa: F811
    settings.ALPACA_PAPER_URL, settings.ALPACA_LIVE_URL, settings.ALPACA_DATA_URL = sim.paper_url, sim.live_url, sim.data_url
    broker_seam.reset_pool()
    yield sim
    sim.control("POST", "/_sim/streams/faults/clear", {})
    sim.clear_faults()
    broker_seam.reset_pool()


@pytest.fixture
def accounts(sim_urls, config_file):  # noqa: F811
    return {name: demo_account(name) for name in ("account_001", "account_002")}


@pytest.fixture
def listening(accounts, sim_urls):
    runner = ListenerThread(poll_seconds=0.2).start()
    runner.wait_connected(len(accounts))
    yield runner
    runner.stop()
