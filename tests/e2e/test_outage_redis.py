"""Redis goes away under traffic and comes back: the API keeps serving, says degraded, and
recovers with no restart. The stack runs on a Redis and a PostgreSQL of the test's own, so the
outage never touches the machine's shared servers."""
from __future__ import annotations

import re
import time

import pytest

from tests.e2e.faultstack import admin, orders_list, quote, secrets_file, sim_orders, stack_env, stock_order
from tests.helpers.services import OwnPostgres, OwnRedis
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from tests.helpers.traffic import Traffic

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def detailed(stack) -> dict:
    status, body = stack.get("/api/v1/health/detailed", token=admin(), timeout=15)
    assert status == 200, body
    return body


def worker_answers(stack) -> bool:
    """The test's own Celery client lost its connection too: ask through a fresh one."""
    if stack._celery is not None:
        stack._celery.close()
        stack._celery = None
    try:
        return stack.node_name() in stack.ping_workers(timeout=2)
    except Exception:  # noqa: BLE001 - the broker is still coming back
        return False


def test_redis_outage_degrades_and_recovers_without_a_restart(stack_factory, sim, tmp_path):  # noqa: F811
    with OwnRedis() as redis, OwnPostgres() as pg:
        with stack_factory(processes=("web", "worker"), env=stack_env(sim, secrets_file(tmp_path), redis=redis, postgres=pg)) as stack:
            web_pids = stack.pids()
            assert detailed(stack)["checks"]["redis"]["status"] == "ok"

            with Traffic(stack, {"order": stock_order(prefix="r"), "quote": quote(), "orders": orders_list()}, pause=0.1, deadline=90) as traffic:
                stack.wait_for(lambda: len(traffic.where(kind="order", status=201)) >= 3, "traffic to flow", timeout=30)
                redis.stop()
                down_at = time.monotonic()
                # every process notices on its own; /health/detailed answers within its bounds
                stack.wait_for(lambda: detailed(stack)["status"] == "degraded", "health to say degraded", timeout=60)
                stack.wait_for(lambda: all(len([a for a in traffic.since(down_at) if a.kind == kind]) >= 5 for kind in ("order", "quote")),
                               "traffic to keep flowing with Redis down", timeout=30)
                report = detailed(stack)
                checks = report["checks"]
                assert report["status"] == "degraded", report
                assert checks["redis"]["status"] == "degraded" and checks["cache"]["status"] == "degraded", checks
                assert checks["broker"]["status"] == "degraded", checks  # background work waits; the API does not
                assert checks["throttling"]["failing_open"] is True, checks["throttling"]
                assert checks["accounts"]["budget_store"] == "process (Redis down)", checks["accounts"]
                assert checks["database"]["status"] == "ok"
                during = [a for a in traffic.since(down_at)]

                redis.start()  # same port, empty: a restarted cache
                up_at = time.monotonic()
                stack.wait_for(lambda: detailed(stack)["checks"]["redis"]["status"] == "ok", "redis to be seen again", timeout=60)
                stack.wait_for(lambda: detailed(stack)["checks"]["cache"]["status"] == "ok", "the cache to recover", timeout=60)
                stack.wait_for(lambda: detailed(stack)["checks"]["broker"]["status"] == "ok", "the Celery broker to recover", timeout=60)
                stack.wait_for(lambda: worker_answers(stack), "the worker to reconnect", timeout=30)
                stack.wait_for(lambda: len([a for a in traffic.since(up_at) if a.kind == "order" and a.status == 201]) >= 3,
                               "orders after the recovery", timeout=60)

            answers = traffic.answers
            summary = traffic.summary()
            assert not [a for a in answers if a.status >= 500 or a.status == 0], summary
            assert {a.status for a in answers} <= {200, 201}, summary
            # requests really flowed while Redis was down, and none waited on it
            down_window = [a for a in during if a.at < up_at]
            assert len([a for a in down_window if a.kind == "order"]) >= 5, summary
            assert len([a for a in down_window if a.kind == "quote"]) >= 5, summary
            assert max(a.elapsed for a in down_window) < 3.0, sorted(a.elapsed for a in down_window)[-5:]

            # throttling failed open with an error log, and counts again once Redis is back
            assert "rate-limit store unavailable, failing open" in stack.error_log()
            assert "cache unavailable for the upstream budget, counting per process" in stack.error_log()
            status, _, headers = stack.request("GET", "/api/v1/stocks/AAPL/quote", token=quote()(0)[3])
            assert status == 200 and "X-RateLimit-Remaining" in headers, headers
            assert redis.ping()
            stack.wait_for(lambda: detailed(stack)["checks"]["accounts"]["budget_store"] == "shared", "the shared budget again", timeout=60)

            # no order lost: every 201 is one order in alpacasim; the worker runs tasks again
            accepted = {a for a in answers if a.kind == "order" and a.status == 201}
            assert len(sim_orders(sim)) == len(accepted)
            assert stack.call_task("debug.ping", timeout=60) == "pong"
            assert stack.pids() >= {p for p in web_pids if p in stack.pids()} and stack.running() == {"web": True, "worker": True}


def test_worker_and_beat_stop_on_sigterm_while_redis_is_down(stack_factory, sim, tmp_path):  # noqa: F811
    """A supervisor stopping the bot during a Redis outage: worker and beat leave within the bound,
    their reconnect loops notwithstanding. (A task whose result store meets the outage is a race this
    test cannot force; CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS bounds that wait.)"""
    with OwnRedis() as redis, OwnPostgres() as pg:
        with stack_factory(processes=("worker", "beat"), beat_interval=0.5, stop_timeout=10,
                           env=stack_env(sim, secrets_file(tmp_path), redis=redis, postgres=pg)) as stack:
            mark = stack.log_mark()
            stack.wait_for(lambda: len(stack.tasks_done("debug.ping", since=mark)) >= 2, "beat's pings to keep the worker busy")
            redis.stop()
            met = {"beat": r"beat: Connection error|Connection to Redis lost", "worker": r"Connection to broker lost|Cannot connect to"}
            stack.wait_for(lambda: all(re.search(pattern, stack.output(name)) for name, pattern in met.items()),
                           "worker and beat to meet the outage", timeout=30)
            started = time.monotonic()
            stack.stop()  # raises if a process outlives its 10 s bound
            assert time.monotonic() - started < 10
            assert "Warm shutdown" in stack.output("worker")
