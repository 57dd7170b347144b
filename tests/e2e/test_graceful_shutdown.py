"""SIGTERM mid-order: gunicorn finishes the request in flight within graceful_timeout, and
the Celery worker finishes the sell-bot exit in flight within its stop bound; each OrderRecord is
written and no order is lost or sent twice."""
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

CALL = "AAPL270115C00200000"
SELL = {"enabled": True, "check_interval": 1, "strategy_one": {"profit_rate": 1.1, "stop_loss_rate": 0.8}}


def test_sigterm_to_gunicorn_finishes_the_order_in_flight(stack_factory, sim, tmp_path):  # noqa: F811
    with OwnRedis() as redis, OwnPostgres() as pg:
        with stack_factory(processes=("web",), env=stack_env(
            sim, secrets_file(tmp_path), redis=redis, postgres=pg, GUNICORN_GRACEFUL_TIMEOUT="10")) as stack:
            sim.set_latency(3000, route="orders")
            result = {}

            def place():
                result["answer"] = stack.request("POST", "/api/v1/stocks/order", token=trader(), timeout=15, body={
                    "symbol": "AAPL", "qty": 1, "side": "buy", "type": "market", "time_in_force": "day", "client_order_id": "graceful-1"})

            thread = threading.Thread(target=place)
            thread.start()
            # in flight: its record is written (pending) and the broker holds the submission for 3 s
            stack.wait_for(lambda: query(stack, "SELECT outcome FROM trading_orderrecord") == [("pending",)], "the order in flight")
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


def test_sigterm_to_the_worker_finishes_the_exit_in_flight(stack_factory, sim, tmp_path):  # noqa: F811
    sim.set_price(CALL, bid=1.95, ask=2.00)
    sim.set_clock(is_open=True)
    with OwnRedis() as redis, OwnPostgres() as pg:
        with stack_factory(beat_interval=1, env=stack_env(sim, secrets_file(tmp_path, sell_module=SELL), redis=redis, postgres=pg)) as stack:
            status, body, _ = stack.request("POST", "/api/v1/options/order", token=trader(), body={
                "option_symbol": CALL, "qty": 1, "side": "buy", "type": "market", "time_in_force": "day", "auto_sell_enabled": True})
            assert status == 201, body
            stack.wait_for(lambda: query(stack, "SELECT COUNT(*) FROM sellbot_managedposition") == [(1,)], "the fill to be managed")

            sim.set_latency(2000, route="orders")  # the exit's submission will take 2 s
            sim.set_price(CALL, bid=2.40, ask=2.45)  # +20%: take profit
            stack.wait_for(lambda: query(stack, "SELECT outcome FROM trading_orderrecord WHERE side = 'sell'") == [("pending",)],
                           "the exit to be in flight at the broker", timeout=60)
            sent_at = time.monotonic()
            exit_code = stack.kill("worker", signal.SIGTERM, timeout=20)
            stopped_in = time.monotonic() - sent_at

            assert exit_code == 0 and stopped_in < 15, (exit_code, stopped_in, stack.output("worker")[-3000:])
            assert "Warm shutdown" in stack.output("worker")
            sells = [o for o in sim_orders(sim) if o["side"] == "sell"]
            assert len(sells) == 1 and sells[0]["client_order_id"].startswith("sb-")
            rows = query(stack, "SELECT outcome, client_order_id FROM trading_orderrecord WHERE side = 'sell'")
            assert rows == [("accepted", sells[0]["client_order_id"])]
            assert query(stack, "SELECT outcome FROM sellbot_selldecision") == [("placed",)]
