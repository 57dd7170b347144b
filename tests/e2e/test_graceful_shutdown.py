"""SIGTERM to gunicorn mid-order (SPEC §12): the in-flight request finishes within graceful_timeout and
its OrderRecord is written; nothing is lost."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.e2e.faultstack import query, secrets_file, sim_orders, stack_env, trader
from tests.helpers.services import OwnPostgres, OwnRedis
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_sigterm_to_gunicorn_finishes_the_order_in_flight(stack_factory, sim, tmp_path):  # noqa: F811
    with OwnRedis() as redis, OwnPostgres() as pg:
        with stack_factory(processes=("web",), env=stack_env(
            sim, secrets_file(tmp_path), redis=redis, postgres=pg, GUNICORN_GRACEFUL_TIMEOUT="10")) as stack:
            sim.set_latency(1000, route="orders")
            result = {}

            def place():
                result["answer"] = stack.request("POST", "/api/v1/stocks/order", token=trader(), timeout=15, body={
                    "symbol": "AAPL", "qty": 1, "side": "buy", "type": "market", "time_in_force": "day", "client_order_id": "graceful-1"})

            thread = threading.Thread(target=place)
            thread.start()
            time.sleep(0.6)  # the order is at the broker now
            web = stack._procs["web"]
            sent_at = time.monotonic()
            os.kill(web.pid, signal.SIGTERM)
            thread.join(timeout=15)
            web.wait(timeout=15)
            stopped_in = time.monotonic() - sent_at

            status, body, _ = result["answer"]
            assert status == 201, body
            assert stopped_in < 10, stopped_in  # within graceful_timeout
            assert [o["client_order_id"] for o in sim_orders(sim)] == ["graceful-1"]
            rows = query(stack, "SELECT outcome, http_status, broker_order_id FROM trading_orderrecord")
            assert rows == [("accepted", 201, body["id"])]
            assert query(stack, "SELECT COUNT(*) FROM audit_auditevent WHERE action = 'order.submitted'") == [(1,)]
