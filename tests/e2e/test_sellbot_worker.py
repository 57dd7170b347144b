"""The sell bot on real processes: gunicorn, a Celery worker and beat (tests/helpers/stack.py) against a
running alpacasim. No eager mode: prices are set in alpacasim, the test waits on the real worker, then
asserts on alpacasim's order book and on the stack's own database. "Nothing more happened" is asserted
only after the bot has run again (faultstack.wait_for_bot_passes), never after a sleep."""
from __future__ import annotations

import os
import re
import signal
from datetime import datetime

import pytest

from tests.e2e.faultstack import admin, query, secrets_file, stack_env, trader, wait_for_bot_passes
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

CALL = "AAPL270115C00200000"
PUT = "MSFT270115P00400000"
OTHER = "SPY270115C00600000"
SELL_MODULE = {"enabled": True, "check_interval": 1, "order_cancel_minutes": 3, "max_exit_attempts": 2,
               "strategy_one": {"profit_rate": 1.1, "stop_loss_rate": 0.8}}


def sells(sim, symbol=None) -> list[dict]:  # noqa: F811
    return [o for a in sim.state()["accounts"] for o in a.get("orders", [])
            if o["side"] == "sell" and (symbol is None or o["symbol"] == symbol)]


@pytest.fixture
def bot_stack(stack_factory, sim, tmp_path):  # noqa: F811
    def start(*, sell_module: dict | None = None, processes=("web", "worker", "beat"), env: dict | None = None, accounts: dict | None = None):
        secrets = secrets_file(tmp_path, sell_module={**SELL_MODULE, **(sell_module or {})}, accounts=accounts)
        sim.set_clock(is_open=True)
        stack = stack_factory(processes=processes, env={**stack_env(sim, secrets), **(env or {})})
        stack.manage("sync_accounts")
        return stack
    return start


def buy(stack, account_id, symbol, qty, auto_sell=True):
    status, body, _ = stack.request("POST", "/api/v1/options/order", token=trader(account_id), body={
        "option_symbol": symbol, "qty": qty, "side": "buy", "type": "market", "time_in_force": "day", "auto_sell_enabled": auto_sell,
    })
    assert status == 201, body
    return body


def test_take_profit_and_stop_loss_on_a_real_worker(bot_stack, sim):  # noqa: F811
    sim.set_price(CALL, bid=1.95, ask=2.00)
    sim.set_price(PUT, bid=2.95, ask=3.00)
    sim.set_price(OTHER, bid=0.95, ask=1.00)
    stack = bot_stack()
    buy(stack, "account_001", CALL, 2)
    buy(stack, "account_002", PUT, 1)
    buy(stack, "account_002", OTHER, 3, auto_sell=False)  # never opted in
    stack.wait_for(lambda: query(stack, "SELECT COUNT(*) FROM sellbot_managedposition")[0][0] == 2, "the fills to become managed positions")
    # accepted orders ask for their account's balance refresh, coalesced per account (accounts/balance_refresh.py):
    # the two buys of account_002 a few ms apart may share one refresh, sent after both; the real worker runs them
    stack.wait_for(lambda: len(stack.tasks_done("accounts.refresh_balance", since=0)) >= 2, "a balance refresh for each account that bought")
    fresh = query(stack, "SELECT COUNT(*) FROM accounts_balancesnapshot s JOIN accounts_alpacaaccount a ON a.id = s.account_id "
                         "JOIN trading_orderrecord r ON r.account_id = a.id WHERE a.account_id = 'account_001' AND s.fetched_at > r.responded_at")
    assert fresh[0][0] >= 1

    sim.set_price(CALL, bid=2.30, ask=2.35)   # +15%: take profit
    sim.set_price(PUT, bid=2.30, ask=2.35)    # -23%: stop loss
    sim.set_price(OTHER, bid=5.00, ask=5.05)  # +400%, but not opted in
    stack.wait_for(lambda: len([o for o in sells(sim) if o["status"] == "filled"]) == 2, "both exits to fill", timeout=60)
    stack.wait_for(lambda: {r[0] for r in query(stack, "SELECT status FROM sellbot_managedposition")} == {"closed"},
                   "the positions to close", timeout=60)

    decisions = dict(query(stack, "SELECT symbol, reason FROM sellbot_selldecision"))
    assert decisions == {CALL: "take_profit", PUT: "stop_loss"}
    by_symbol = {o["symbol"]: o for o in sells(sim)}
    assert set(by_symbol) == {CALL, PUT}  # OTHER untouched
    assert by_symbol[CALL]["client_order_id"].startswith("sb-") and by_symbol[CALL]["qty"] == "2"
    assert by_symbol[PUT]["filled_avg_price"] in ("2.3", "2.30")
    sources = {r[0] for r in query(stack, "SELECT source FROM trading_orderrecord WHERE side = 'sell'")}
    assert sources == {"sellbot"}
    actions = [r[0] for r in query(stack, "SELECT action FROM audit_auditevent WHERE action LIKE 'sell.%'")]
    assert actions.count("sell.decision") == 2
    mark = stack.log_mark()
    wait_for_bot_passes(stack, since=mark, sweeps=2, what="two more sweeps after the exits")
    assert len(sells(sim)) == 2  # nothing is sold twice


@pytest.mark.slow
def test_stale_exit_cancelled_replaced_and_market_after_max_attempts(bot_stack, sim):  # noqa: F811
    """No bid: the stop-loss exit rests as a limit at the minimum tick, goes stale (0.02 min = 1.2 s), is
    cancelled and re-placed. With the market closed the bot still cancels but does not re-place; once the
    bid is back and the market open, the exit after max_exit_attempts cancellations is a market order."""
    sim.set_price(CALL, bid=1.95, ask=2.00)
    stack = bot_stack(sell_module={"order_cancel_minutes": 0.02, "max_exit_attempts": 2})
    buy(stack, "account_001", CALL, 2)
    stack.wait_for(lambda: query(stack, "SELECT COUNT(*) FROM sellbot_managedposition")[0][0] == 1, "the managed position")
    sim.set_price(CALL, price=1.50, illiquid=True)
    stack.wait_for(lambda: query(stack, "SELECT COUNT(*) FROM sellbot_selldecision WHERE attempt = 2 AND outcome = 'placed'")[0][0] == 1,
                   "attempt 1 to go stale, be cancelled and be re-placed", timeout=60)
    sim.set_clock(is_open=False)
    stack.wait_for(lambda: len([o for o in sells(sim) if o["status"] == "canceled"]) == 2, "attempt 2 to be cancelled", timeout=60)
    wait_for_bot_passes(stack, since=stack.log_mark(), checks=2, what="two account checks on the closed market")
    assert query(stack, "SELECT COUNT(*) FROM sellbot_selldecision")[0][0] == 2  # closed market: no re-place
    sim.set_price(CALL, bid=1.40, ask=1.45, illiquid=False)
    sim.set_clock(is_open=True)
    stack.wait_for(lambda: any(o["type"] == "market" and o["status"] == "filled" for o in sells(sim)), "the emergency market exit", timeout=60)
    rows = query(stack, "SELECT attempt, order_type, limit_price FROM sellbot_selldecision ORDER BY attempt")
    assert [(a, t) for a, t, _ in rows] == [(1, "limit"), (2, "limit"), (3, "market")]
    cancels = query(stack, "SELECT outcome, attempts, limit_minutes, age_seconds FROM sellbot_sellcancellation")
    assert len(cancels) == 2 and all(c[0] == "canceled" and c[1] == 1 and c[2] == 0.02 and c[3] >= 1.2 for c in cancels)


@pytest.mark.slow
def test_cancel_retried_through_503s_with_growing_delays(bot_stack, sim):  # noqa: F811
    sim.set_price(CALL, bid=1.95, ask=2.00)
    stack = bot_stack(sell_module={"order_cancel_minutes": 0.02}, env={"SELLBOT_CANCEL_RETRY_BASE_SECONDS": "0.4"})
    buy(stack, "account_001", CALL, 1)
    stack.wait_for(lambda: query(stack, "SELECT COUNT(*) FROM sellbot_managedposition")[0][0] == 1, "the managed position")
    sim.set_fault("order_cancel", status=503, count=3)
    sim.set_price(CALL, price=1.50, illiquid=True)
    stack.wait_for(lambda: query(stack, "SELECT COUNT(*) FROM sellbot_sellcancellation WHERE outcome = 'canceled'")[0][0] >= 1,
                   "the cancel to get through three 503s", timeout=90)
    order_id, attempts, error = query(stack, "SELECT order_id, attempts, error FROM sellbot_sellcancellation WHERE outcome = 'canceled'")[0]
    assert attempts == 4 and error == ""
    events = query(stack, "SELECT at FROM audit_auditevent WHERE action = 'sell.cancelled' AND object_id = "
                          "(SELECT CAST(id AS TEXT) FROM sellbot_sellcancellation WHERE order_id = %s) ORDER BY seq", (order_id,))
    assert len(events) == 4
    # The delays the task asked for (its retry lines), not the gaps a busy machine stretches: each in the
    # upper half of base x 2^n, so they grow; and each retry ran no earlier than its delay.
    delays = [float(d) for d in re.findall(r"Task sellbot\.cancel_order\[[0-9a-f-]+\] retry: Retry in ([0-9.]+)s", stack.app_log())]
    assert len(delays) == 3, delays
    assert 0.2 <= delays[0] <= 0.4 <= delays[1] <= 0.8 <= delays[2] <= 1.6, delays
    times = [e[0] if isinstance(e[0], datetime) else datetime.fromisoformat(str(e[0])) for e in events]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert all(gap >= delay - 0.05 for gap, delay in zip(gaps, delays, strict=True)), (gaps, delays)
    assert [o["status"] for o in sells(sim, CALL)][0] == "canceled"


@pytest.mark.slow
def test_control_and_health_across_the_worker(bot_stack, sim):  # noqa: F811
    sim.set_price(CALL, bid=1.95, ask=2.00)
    stack = bot_stack()
    ops = admin()
    stack.wait_for(lambda: stack.get("/api/v1/sell/health", token=ops)[0] == 200, "a healthy bot")
    status, body, _ = stack.request("POST", "/api/v1/sell/control", body={"action": "stop"}, token=ops)
    assert status == 200 and body["enabled"] is False
    buy(stack, "account_001", CALL, 1)
    swept = wait_for_bot_passes(stack, since=stack.log_mark(), sweeps=2, what="two sweeps of the stopped bot")
    assert all("'skipped': 'stopped'" in line.rest for line in swept), swept
    assert query(stack, "SELECT COUNT(*) FROM sellbot_managedposition")[0][0] == 0  # stopped: no sweep acts
    assert stack.get("/api/v1/sell/health", token=ops)[0] == 200  # stopped on purpose is healthy
    assert stack.request("POST", "/api/v1/sell/control", body={"action": "start"}, token=ops)[0] == 200
    stack.wait_for(lambda: query(stack, "SELECT COUNT(*) FROM sellbot_managedposition")[0][0] == 1, "the started bot to act")
    assert stack.request("POST", "/api/v1/sell/control", body={"action": "restart"}, token=ops)[0] == 200
    actions = [r[0] for r in query(stack, "SELECT action FROM audit_auditevent WHERE action LIKE 'sellbot.%' ORDER BY seq")]
    assert actions == ["sellbot.stopped", "sellbot.started", "sellbot.stopped", "sellbot.started"]

    stack.kill("worker", signal.SIGKILL)
    stack.wait_for(lambda: stack.get("/api/v1/sell/health", token=ops)[0] == 503, "health to report the stall", timeout=60)
    status, body = stack.get("/api/v1/sell", token=ops)
    assert body["status"] == "stalled" and body["running"] is False
    stack.restart("worker")
    stack.wait_for(lambda: stack.get("/api/v1/sell/health", token=ops)[0] == 200, "health after the worker restarts", timeout=90)
    # the report pings workers with a 0.5 s timeout: a just-restarted worker may miss the first ping
    stack.wait_for(lambda: stack.get("/api/v1/sell", token=ops)[1]["workers"], "the report to list the restarted worker", timeout=60)
    status, body = stack.get("/api/v1/sell", token=ops)
    assert body["running"] is True and stack.node_name() in body["workers"]


@pytest.mark.slow
def test_worker_killed_mid_sweep_then_restarted_sells_once_and_still_cancels_stale_orders(bot_stack, sim):  # noqa: F811
    """SIGKILL the worker (and its pool) while a sweep is placing exits over many accounts, then
    restart it. Every exit order in alpacasim is one the bot recorded, no position ever has two working
    exits, and the orders that were resting when the worker died are cancelled as stale afterwards."""
    from alpacasim.accounts import generated_credentials

    n = 12
    accounts = {}
    for i in range(1, n + 1):
        key, secret = generated_credentials(i)
        sim.upsert_account(key, secret)
        accounts[f"acct_{i:03d}"] = {"api_key": key, "secret_key": secret, "paper_trading": True}
    sim.set_price(CALL, bid=1.95, ask=2.00)
    stack = bot_stack(accounts=accounts, sell_module={"order_cancel_minutes": 0.05, "max_exit_attempts": 10})
    for account_id in accounts:
        buy(stack, account_id, CALL, 1)
    stack.wait_for(lambda: query(stack, "SELECT COUNT(*) FROM sellbot_managedposition")[0][0] == n, "every fill to be managed", timeout=90)

    sim.set_latency(120)  # each account's check takes about a second: the kill lands inside a sweep
    sim.set_price(CALL, price=1.50, illiquid=True)  # stop loss everywhere; with no bid each exit rests at the minimum tick
    decisions = lambda: query(stack, "SELECT COUNT(*) FROM sellbot_selldecision")[0][0]  # noqa: E731
    stack.wait_for(lambda: decisions() >= 2, "the first exits of the sweep", timeout=90)
    stack.kill("worker", signal.SIGKILL)
    at_kill = decisions()
    assert at_kill < n, "the sweep finished before the kill; raise the latency"
    resting = {o["id"] for o in sells(sim) if o["status"] in ("new", "accepted", "pending_new")}

    sim.set_latency(0)
    restarted = stack.log_mark()
    stack.restart("worker")
    # every position gets its exit, and the exits resting at the kill go stale and are cancelled
    stack.wait_for(lambda: query(stack, "SELECT COUNT(DISTINCT position_id) FROM sellbot_selldecision")[0][0] == n,
                   "an exit for every position after the restart", timeout=90)
    stack.wait_for(lambda: all(o["status"] == "canceled" for o in sells(sim) if o["id"] in resting),
                   "the orders resting at the kill to be cancelled", timeout=90)
    assert stack.request("POST", "/api/v1/sell/control", body={"action": "stop"}, token=admin())[0] == 200
    # a check that was running finishes, and a sweep of the stopped bot runs: nothing more will move
    wait_for_bot_passes(stack, since=stack.log_mark(), sweeps=1, settled_since=restarted, what="the stopped bot to settle")

    orders = sells(sim, CALL)
    recorded = {r[0] for r in query(stack, "SELECT client_order_id FROM sellbot_selldecision")}
    assert {o["client_order_id"] for o in orders} <= recorded  # no broker order the bot does not know of
    assert len({o["client_order_id"] for o in orders}) == len(orders)
    working = {}
    for o in orders:
        if o["status"] not in ("canceled", "filled", "rejected", "expired"):
            working.setdefault(o["client_order_id"].rsplit("-", 1)[0], []).append(o["id"])
    assert all(len(ids) == 1 for ids in working.values()), working  # never two working exits for one position
    per_position = query(stack, "SELECT position_id, COUNT(*), MAX(attempt) FROM sellbot_selldecision GROUP BY position_id")
    assert all(count == top for _, count, top in per_position), per_position  # attempts 1..k, none twice
    cancelled = {r[0] for r in query(stack, "SELECT order_id FROM sellbot_sellcancellation WHERE outcome IN ('canceled', 'already_final')")}
    assert resting <= cancelled


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="Flower runs with the Redis broker (make run starts it only then)")
def test_flower_lists_the_worker_and_the_sellbot_tasks(bot_stack, sim):  # noqa: F811
    sim.set_price(CALL, bid=1.95, ask=2.00)
    # Flower 2 serves its HTTP API only with auth or this switch; the harness binds it to 127.0.0.1.
    stack = bot_stack(processes=("web", "worker", "beat", "flower"), env={"FLOWER_UNAUTHENTICATED_API": "true"})

    def api(path):
        status, body = stack.flower_get(path, timeout=5)
        assert status == 200, (path, status, body)
        return body

    stack.wait_for(lambda: stack.node_name() in api("/api/workers?refresh=1"), "Flower to see the worker", timeout=90)
    buy(stack, "account_001", CALL, 1)  # a managed account: sweeps fan out check_account
    seen = lambda: {t["name"] for t in api("/api/tasks?limit=500").values()}  # noqa: E731
    stack.wait_for(lambda: {"sellbot.sweep", "sellbot.watchdog", "sellbot.check_account"} <= seen(),
                   "Flower to list the sell-bot tasks", timeout=90)
    # A check is listed once the worker received it; its success arrives once the (niced) worker ran it.
    succeeded = lambda: any(t["state"] == "SUCCESS" and t["worker"] == stack.node_name()  # noqa: E731
                            for t in api("/api/tasks?limit=500&taskname=sellbot.check_account").values())
    stack.wait_for(succeeded, "a sellbot.check_account to succeed on the worker", timeout=90)
