"""Tick-driven exits on real processes (docs/streaming.md, "Tick-driven exits"): gunicorn, a Celery worker,
the trade-updates listener (fills become managed positions without a sweep), the ws process and, with Redis,
the hub process, against alpacasim's streams. Prices move in alpacasim; the tests wait on alpacasim's order
book and the stack's database."""
from __future__ import annotations

import os

import pytest

from tests.e2e.faultstack import admin, query, secrets_file, stack_env, trader, wait_for_bot_passes
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from tests.helpers.stack import stack_factory  # noqa: F401 - fixture

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CALL = "AAPL270115C00200000"
PUT = "MSFT270115P00400000"
RULES = {"profit_rate": 1.5, "stop_loss_rate": 0.8}


def processes(*names: str) -> tuple[str, ...]:
    # With Redis the hub is its own process; on embedded defaults the ws process hosts it. The ticks worker
    # runs the tick evaluations (their own queue).
    return (*names, "ticks", "ws", "hub") if os.environ.get("REDIS_URL") else (*names, "ticks", "ws")


def sells(sim) -> list[dict]:  # noqa: F811
    return [o for a in sim.state()["accounts"] for o in a.get("orders", []) if o["side"] == "sell"]


def buy(stack, account_id: str, symbol: str, qty: int) -> None:
    status, body, _ = stack.request("POST", "/api/v1/options/order", token=trader(account_id), body={
        "option_symbol": symbol, "qty": qty, "side": "buy", "type": "market", "time_in_force": "day", "auto_sell_enabled": True})
    assert status == 201, body


def option_feed(stack) -> dict:
    section = stack.get("/api/v1/health/detailed", token=admin())[1]["checks"]["streams"]
    return section.get("feeds", {}).get("option:indicative", {})


def start(stack_factory, sim, sim_server, tmp_path, *, names, sell_module, positions):  # noqa: F811
    sim_server.control("POST", "/_sim/streams/config", {"tick_rate": 20})
    for symbol in {s for _, s in positions}:
        sim.set_price(symbol, bid=1.95, ask=2.00)
    secrets = secrets_file(tmp_path, sell_module={"enabled": True, "strategy_one": RULES, **sell_module})
    stack = stack_factory(processes=processes(*names), env=stack_env(sim, secrets))
    for account_id, symbol in positions:
        buy(stack, account_id, symbol, 2)
    stack.wait_for(lambda: query(stack, "SELECT COUNT(*) FROM sellbot_managedposition")[0][0] == len(positions),
                   "the fills to become managed positions", timeout=60)
    # The hub learns the managed symbols (every 5 s) and streams them.
    stack.wait_for(lambda: option_feed(stack).get("subscribed_symbols") == len({s for _, s in positions}),
                   "the hub to stream the managed symbols", timeout=60)
    return stack


@pytest.fixture
def ticking(sim_server):  # noqa: F811
    yield
    sim_server.control("POST", "/_sim/streams/config", {"tick_rate": 1})


def test_a_tick_fires_the_stop_loss_without_a_sweep(stack_factory, sim, sim_server, tmp_path, ticking):  # noqa: F811
    # No beat: nothing sweeps. The listener opens the position from the fill; only a tick can sell it.
    stack = start(stack_factory, sim, sim_server, tmp_path, names=("web", "worker", "listener"),
                  sell_module={"check_interval": 60, "tick_eval_interval_ms": 100}, positions=[("account_001", CALL)])
    sim.set_price(CALL, bid=1.55, ask=1.60)  # -22.5%: below the 0.8 stop
    stack.wait_for(lambda: len(sells(sim)) == 1, "the exit order at alpacasim", timeout=30)
    stack.wait_for(lambda: query(stack, "SELECT outcome FROM sellbot_selldecision") == [("placed",)], "the decision's outcome")
    (reason, detail, coid, outcome), = query(stack, "SELECT reason, detail, client_order_id, outcome FROM sellbot_selldecision")
    assert (reason, outcome) == ("stop_loss", "placed") and detail.startswith("tick: ")
    (order,) = sells(sim)
    assert order["client_order_id"] == coid and order["symbol"] == CALL and order["qty"] == "2"
    assert stack.tasks_done("sellbot.sweep", since=0) == [] and stack.tasks_done("sellbot.tick_check", since=0)
    # More ticks below the stop keep coming; the position is closing, so the evaluation that sold marked the
    # symbol settled and the hub drops its ticks instead of sending an evaluation every 100 ms.
    mark = stack.log_mark()
    stack.wait_for(lambda: (tick_checks(stack) or {}).get("skipped_settled", 0) >= 5, "the hub dropping the settled symbol's ticks", timeout=30)
    assert len(stack.tasks_done("sellbot.tick_check", since=mark)) <= 1  # at most the one in flight when the mark arrived
    assert len(sells(sim)) == 1


def tick_checks(stack) -> dict | None:
    return stack.get("/api/v1/health/detailed", token=admin())[1]["checks"]["streams"].get("tick_checks")


def test_tick_and_sweep_racing_sell_each_position_exactly_once(stack_factory, sim, sim_server, tmp_path, ticking):  # noqa: F811
    # Both paths run as fast as they may: a sweep every 0.5 s pricing from the stream's cache, and a tick
    # evaluation per symbol every 50 ms. Whoever takes the account first sells; the other finds it closing.
    positions = [("account_001", CALL), ("account_002", CALL), ("account_001", PUT)]
    stack = start(stack_factory, sim, sim_server, tmp_path, names=("web", "worker", "beat", "listener"),
                  sell_module={"check_interval": 0.5, "tick_eval_interval_ms": 50}, positions=positions)
    sim.set_price(CALL, bid=1.50, ask=1.55)
    sim.set_price(PUT, bid=1.50, ask=1.55)
    stack.wait_for(lambda: len(sells(sim)) >= 3, "the three exits at alpacasim", timeout=60)
    wait_for_bot_passes(stack, since=stack.log_mark(), sweeps=4, what="four more sweeps after the exits")
    by_position = {}
    for o in sells(sim):
        by_position.setdefault((o["client_order_id"].rsplit("-", 1)[0]), []).append(o)
    assert len(by_position) == 3 and all(len(v) == 1 for v in by_position.values()), by_position
    rows = query(stack, "SELECT reason, detail FROM sellbot_selldecision")
    assert len(rows) == 3 and {r for r, _ in rows} == {"stop_loss"}
