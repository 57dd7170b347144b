"""PostgreSQL restarts under light load: requests in the gap get 503 database_unavailable
quickly, never a hang or a 500; the same processes serve again afterwards; the order ledger and the
audit chain verify. The stack runs on a PostgreSQL cluster of the test's own."""
from __future__ import annotations

import time

import pytest

from tests.e2e.faultstack import orders_list, query, quote, secrets_file, sim_orders, stack_env, stock_order
from tests.helpers.services import OwnPostgres, OwnRedis
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from tests.helpers.traffic import Traffic

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_postgres_restart_answers_503_then_recovers_without_a_restart(stack_factory, sim, tmp_path):  # noqa: F811
    with OwnRedis() as redis, OwnPostgres() as pg:
        with stack_factory(processes=("web", "worker"), env=stack_env(sim, secrets_file(tmp_path), redis=redis, postgres=pg)) as stack:
            pids = stack.pids()

            with Traffic(stack, {"order": stock_order(prefix="p"), "quote": quote(), "orders": orders_list()}, pause=0.1, deadline=90) as traffic:
                stack.wait_for(lambda: len(traffic.where(kind="order", status=201)) >= 3, "traffic to flow", timeout=30)
                down_at = time.monotonic()
                pg.restart(gap=3.0)  # fast shutdown: every open connection is terminated
                up_at = time.monotonic()
                stack.wait_for(lambda: stack.get("/api/v1/ready", timeout=5)[0] == 200, "ready again", timeout=60)
                stack.wait_for(lambda: len([a for a in traffic.since(up_at + 1) if a.kind == "order" and a.status == 201]) >= 3,
                               "orders after the restart", timeout=60)

            answers = traffic.answers
            summary = traffic.summary()
            assert not [a for a in answers if a.status == 0 or a.status == 500 or a.status == 502], summary
            gap = [a for a in answers if a.status == 503]
            assert gap, f"no request saw the gap: {summary}"
            assert {a.code for a in gap} == {"database_unavailable"}, summary
            assert all(a.retry_after for a in gap)
            assert {a.status for a in answers} <= {200, 201, 503}, summary
            # 503s only around the restart: answered after it began, sent no later than shortly after it ended
            assert all(down_at <= a.at + a.elapsed and a.at <= up_at + 5 for a in gap), ([(a.at - down_at, a.elapsed) for a in gap], up_at - down_at)
            assert max(a.elapsed for a in answers) < 12.0, sorted(a.elapsed for a in answers)[-5:]  # no hang
            assert stack.pids() == pids, "the same processes serve: no restart"

            # The ledger: every order alpacasim holds has exactly one accepted record with its client id;
            # every accepted record is one of them; nothing is left pending.
            broker = {o["client_order_id"] for o in sim_orders(sim)}
            rows = query(stack, "SELECT client_order_id, outcome FROM trading_orderrecord WHERE is_current")
            accepted = {c for c, outcome in rows if outcome == "accepted"}
            assert accepted == broker, (sorted(accepted ^ broker), summary)
            assert not [r for r in rows if r[1] == "pending"], rows
            assert len(accepted) == len({a for a in answers if a.kind == "order" and a.status == 201})
            out = stack.manage("verify_audit_chain")
            assert out.startswith("OK "), out  # manage() already failed on a non-zero exit
            # the worker's pool processes kept their connections across tasks (balance refreshes
            # before the restart): each reconnects on its next task instead of failing it
            assert all(stack.call_task("audit.verify_chain", timeout=60)["ok"] for _ in range(4))
