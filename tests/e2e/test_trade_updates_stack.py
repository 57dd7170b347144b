"""The trade-updates listener as `make run` starts it (`manage.py listen_trade_updates`), beside gunicorn and
a Celery worker, against a running alpacasim; no beat, so no sweep: whatever reaches the ledger and the sell
bot came from the events. Runs on embedded defaults (SQLite) and on PostgreSQL + Redis."""
from __future__ import annotations

import pytest

from tests.e2e.faultstack import admin, query, secrets_file, stack_env, trader
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

CALL = "AAPL270115C00200000"


def test_fills_reach_ledger_audit_and_positions_without_a_sweep(stack_factory, sim, tmp_path):  # noqa: F811
    sim.set_price(CALL, bid=1.95, ask=2.00)
    stack = stack_factory(processes=("web", "worker", "listener"), env=stack_env(sim, secrets_file(tmp_path)))
    stack.manage("sync_accounts")

    def section():
        return stack.get("/api/v1/health/detailed", token=admin())[1]["checks"]["trade_updates"]

    stack.wait_for(lambda: section()["accounts_connected"] == section()["accounts_expected"] == 2, "2 trade streams connected")
    status, body, _ = stack.request("POST", "/api/v1/options/order", token=trader("account_001"), body={
        "option_symbol": CALL, "qty": "2", "side": "buy", "type": "market", "time_in_force": "day", "auto_sell_enabled": True,
        "client_order_id": "stack-1"})
    assert status == 201, body
    stack.wait_for(lambda: query(stack, "SELECT COUNT(*) FROM trading_orderevent WHERE broker_order_id = %s AND event = 'fill'",
                                 (body["id"],))[0][0] == 1, "the fill in the ledger")
    stack.wait_for(lambda: query(stack, "SELECT qty FROM sellbot_managedposition WHERE symbol = %s", (CALL,)) != [],
                   "the managed position from the fill event")
    assert float(query(stack, "SELECT qty FROM sellbot_managedposition WHERE symbol = %s", (CALL,))[0][0]) == 2
    (filled, status_, source), = query(stack, "SELECT filled_qty, broker_status, source FROM trading_orderrecord WHERE client_order_id = %s",
                                       ("stack-1",))
    assert (float(filled), status_, source) == (2, "filled", "api")
    assert query(stack, "SELECT COUNT(*) FROM audit_auditevent WHERE action = 'order.filled'")[0][0] == 1
    # the fill enqueued the account's balance refresh, run by the real worker
    stack.wait_for(lambda: len(stack.tasks_done("accounts.refresh_balance", since=0)) >= 2, "balance refresh after the fill")
    stack.wait_for(lambda: section()["events"] >= 2, "the listener's figures (published every poll) to count the events")
    assert section()["status"] == "ok"
    stack.stop()
