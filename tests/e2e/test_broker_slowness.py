"""Alpaca slow on orders: 10 s of latency on order submission, against a 5 s read timeout. The order bulkhead
(trading/bulkhead.py) keeps request threads free for market data; orders end 504 broker_timeout or
503 broker_busy, each with its OrderRecord, and a retry with the same client_order_id leaves exactly
one order at the broker."""
from __future__ import annotations

import threading
import time

import pytest

from tests.e2e.faultstack import query, quote, secrets_file, sim_orders, stack_env, trader
from tests.helpers.services import OwnPostgres, OwnRedis
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

THREADS, SLOTS, ORDERS = 8, 4, 12


def test_slow_orders_do_not_starve_market_data_and_retries_are_safe(stack_factory, sim, tmp_path):  # noqa: F811
    with OwnRedis() as redis, OwnPostgres() as pg:
        with stack_factory(processes=("web",), env=stack_env(
            sim, secrets_file(tmp_path), redis=redis, postgres=pg,
            GUNICORN_THREADS=str(THREADS), BROKER_ORDER_CONCURRENCY=str(SLOTS), BROKER_READ_TIMEOUT="5",
        )) as stack:
            token, quote_token = trader(), quote()(0)[3]
            sim.set_latency(10_000, route="orders")

            def body(n):
                return {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market", "time_in_force": "day", "client_order_id": f"slow-{n}"}

            results: dict[int, tuple] = {}  # n -> (status, body, headers, elapsed, answered at)

            def place(n):
                started = time.monotonic()
                status, answer, headers = stack.request("POST", "/api/v1/stocks/order", body=body(n), token=token, timeout=20)
                results[n] = (status, answer, headers, time.monotonic() - started, time.monotonic())

            def outcomes():
                return dict(query(stack, "SELECT CASE WHEN error_code = '' THEN outcome ELSE error_code END, COUNT(*) FROM trading_orderrecord GROUP BY 1"))

            threads = [threading.Thread(target=place, args=(n,)) for n in range(ORDERS)]
            for t in threads:
                t.start()
            stack.wait_for(lambda: outcomes() == {"pending": SLOTS, "broker_busy": ORDERS - SLOTS},
                           "the slots to be held and the other orders shed", timeout=30)
            quotes = []
            for _ in range(10):
                status, _, _ = stack.request("GET", "/api/v1/stocks/AAPL/quote", token=quote_token, timeout=10)
                quotes.append((status, time.monotonic()))
            for t in threads:
                t.join(timeout=30)

            timed_out = [n for n, r in results.items() if r[0] == 504]
            busy = [n for n, r in results.items() if r[0] == 503]
            codes = sorted((r[0], r[1]["error"]["code"]) for r in results.values())
            assert len(timed_out) == SLOTS and len(busy) == ORDERS - SLOTS, codes
            first_slot_freed = min(results[n][4] for n in timed_out)
            # market data was served while every slot was still held by an order hanging on the broker
            assert all(s == 200 for s, _ in quotes), quotes
            assert max(at for _, at in quotes) < first_slot_freed, (quotes, first_slot_freed)
            assert {results[n][1]["error"]["code"] for n in timed_out} == {"broker_timeout"}
            assert {results[n][1]["error"]["code"] for n in busy} == {"broker_busy"}
            assert all(results[n][2].get("Retry-After") for n in busy)
            assert max(results[n][4] for n in busy) < first_slot_freed  # shed at once, not after waiting for a slot
            # bounded by the read timeout (5 s), not by the broker's 10 s
            assert all(4.5 < results[n][3] < 9.0 for n in timed_out), [results[n][3] for n in timed_out]
            rows = dict(query(stack, "SELECT client_order_id, error_code FROM trading_orderrecord"))
            assert rows == {f"slow-{n}": results[n][1]["error"]["code"] for n in range(ORDERS)}

            # Whatever reached the broker must be found by the retry rather than sent again (alpacasim drops a
            # submission whose client hung up; a real broker may not). The retries are not timed against the
            # hanging submissions: before or after each ends, one order per client_order_id.
            sim.set_latency(0, route="orders")
            reached = {o["client_order_id"] for o in sim_orders(sim)}
            assert reached <= {f"slow-{n}" for n in timed_out}
            retried = {n: stack.request("POST", "/api/v1/stocks/order", body=body(n), token=token, timeout=10) for n in range(ORDERS)}
            assert all(r[0] == 201 for r in retried.values()), {n: r[:2] for n, r in retried.items() if r[0] != 201}
            recovered = {n for n in range(ORDERS) if retried[n][1].get("recovered")}
            assert {n for n in timed_out if f"slow-{n}" in reached} <= recovered <= set(timed_out), (reached, recovered)
            per_client_id = {}
            for order in sim_orders(sim):
                per_client_id[order["client_order_id"]] = per_client_id.get(order["client_order_id"], 0) + 1
            assert per_client_id == {f"slow-{n}": 1 for n in range(ORDERS)}
            attempts = dict(query(stack, "SELECT client_order_id, COUNT(*) FROM trading_orderrecord GROUP BY client_order_id"))
            assert attempts == {f"slow-{n}": 2 for n in range(ORDERS)}  # each attempt has its record
