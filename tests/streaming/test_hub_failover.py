"""With Redis, two hub processes: one leads (holds the upstream), the other stands by. SIGKILL the leader:
the standby takes over within the lock's bound and the same client connection keeps getting ticks."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from tests.helpers.sim_streams import connections, wait_for
from tests.helpers.stack import Stack
from tests.streaming.conftest import secrets_file, stack_env, token
from tests.streaming.test_market_data_ws import FEEDS, _epoch
from tests.streaming.wsclient import Client, run

pytestmark = [pytest.mark.slow, pytest.mark.e2e,
              pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the leader lock needs Redis (REDIS_URL)")]

TAKEOVER_BOUND = 15.0  # lock TTL 5 s + standby poll 1.7 s + connect, with room for a loaded CI host


def test_sigkilled_leader_is_replaced_and_clients_stay_connected(sim, sim_server, tmp_path):  # noqa: F811
    # ``sim`` resets the shared simulator first: a fixed clock left by an earlier test would date the ticks
    sim_server.control("POST", "/_sim/streams/config", {"tick_rate": 10})
    stack = Stack(tmp_path, processes=("ws", "hub", "hub2"), env=stack_env(sim_server, secrets_file(tmp_path)))
    stack.start()
    try:
        async def body():
            c = await Client.open(stack.ws_port, token=token("failover"))
            await c.subscribe(["SPY"])
            await c.next("quote", lambda m: m["symbol"] == "SPY", timeout=30)
            await c.send({"type": "ping"})
            leader = (await c.next("pong"))["stream"]["leader"]
            pid = int(leader.rsplit(":", 1)[1])
            name = next(n for n, p in stack._procs.items() if p.pid == pid)
            await asyncio.to_thread(stack.kill, name, signal.SIGKILL)
            killed_at = time.time()
            quote = await c.next("quote", lambda m: m["symbol"] == "SPY" and _epoch(m["timestamp"]) > killed_at + 0.5,
                                 timeout=TAKEOVER_BOUND + 10)
            assert _epoch(quote["timestamp"]) - killed_at < TAKEOVER_BOUND
            deadline = time.monotonic() + 20
            while True:  # the new leader publishes its status every second
                await c.send({"type": "ping"})
                stream = (await c.next("pong"))["stream"]
                if stream["leader"] != leader and stream["hub"] == "up":
                    break
                assert time.monotonic() < deadline, f"the status still names the killed leader: {stream}"
                await asyncio.sleep(0.3)
            await asyncio.to_thread(wait_for, lambda: connections(sim_server) == FEEDS, 15.0, "one upstream connection per feed")
            await c.close()

        try:
            run(body())
        except Exception as exc:
            raise AssertionError(f"{exc!r}\n{stack.diagnostics()}") from exc
    finally:
        stack.stop()
        sim_server.control("POST", "/_sim/streams/config", {"tick_rate": 1})
