"""A trading-state change reaches other processes within 1 s: two gunicorn workers and a real Celery
worker (tests/helpers/stack.py) against alpacasim; the change is made through the API (one web
process), and undone by `manage.py trading_state` (a process of its own). Assertions are on what each process did after the change plus 1 s (the
orders' records, the worker's own read time), never on a sleep."""
from __future__ import annotations

import time
from datetime import datetime

import pytest

from tests.e2e.faultstack import admin, query, secrets_file, stack_env, trader
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROPAGATION = 1.0  # seconds (docs/risk.md)


def _order(stack, n: int) -> int:
    status, body, _ = stack.request("POST", "/api/v1/stocks/order", token=trader(), body={
        "symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day", "client_order_id": f"prop-{n}"})
    return status


def _changed_at(stack) -> float:
    (value,), = query(stack, "SELECT changed_at FROM risk_tradingstate WHERE scope = 'global'")
    if isinstance(value, str):  # SQLite
        value = datetime.fromisoformat(value.replace(" ", "T"))
    return value.timestamp()


def test_a_state_change_reaches_every_web_and_worker_process_within_a_second(stack_factory, sim, tmp_path):  # noqa: F811
    secrets = secrets_file(tmp_path, trading={"max_orders_per_second": 1000})
    stack = stack_factory(processes=("web", "worker"), env={**stack_env(sim, secrets), "WEB_CONCURRENCY": "2"})
    n = 0
    for _ in range(6):  # both gunicorn workers read (and keep) the active state
        n += 1
        assert _order(stack, n) == 201
    assert stack.call_task("risk.trading_state_effective", "account_001")["state"] == "active"

    status, body, _ = stack.request("POST", "/api/v1/admin/trading-state", token=admin(),
                                    body={"scope": "global", "state": "halted", "reason": "propagation drill"})
    assert status == 200, body
    changed_at = _changed_at(stack)

    # keep ordering and probing the worker until 1.5 s past the change (at least a few of each)
    probes = []
    while time.time() < changed_at + PROPAGATION + 1.5 or len(probes) < 4:
        n += 1
        _order(stack, n)
        probes.append(stack.call_task("risk.trading_state_effective", "account_001"))
    late = [p for p in probes if p["read_at"] >= changed_at + PROPAGATION]
    assert late and all(p["state"] == "halted" and p["reason"] == "propagation drill" for p in late), probes
    rows = query(stack, "SELECT received_at, outcome, error_code FROM trading_orderrecord WHERE client_order_id LIKE 'prop-%%'")
    after = []
    for received_at, outcome, code in rows:
        at = datetime.fromisoformat(received_at.replace(" ", "T")) if isinstance(received_at, str) else received_at
        if at.timestamp() >= changed_at + PROPAGATION:
            after.append((outcome, code))
    assert after and set(after) == {("refused", "trading_halted")}, rows

    # the command (no API involved) sets it back; every process follows
    assert "halted -> active" in stack.manage("trading_state", "set", "active", "--reason", "drill over")
    actors = [r[0] for r in query(stack, "SELECT actor_id FROM audit_auditevent WHERE action = 'risk.state_changed' ORDER BY seq")]
    assert actors[0] == "ops" and actors[1].startswith("manage.py:")
    stack.wait_for(lambda: _order(stack, 10_000 + int(time.time() * 1000) % 100_000) == 201, "orders to be accepted again", timeout=30)
    assert stack.call_task("risk.trading_state_effective", "account_001")["state"] == "active"
