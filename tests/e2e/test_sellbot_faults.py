"""The sell bot when its schedulers misbehave, and when the host clock is not Eastern:
two beats started by mistake and a beat killed and restarted never sell a position twice; with the
processes' TZ set to Asia/Tokyo every time the bot computes (record times, cancellation ages, the
market-close window) is aware UTC. A worker killed mid-sweep is covered in test_sellbot_worker.py."""
from __future__ import annotations

import os
import re
import signal
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.faultstack import query, secrets_file, sim_orders, stack_env, trader, wait_for_bot_passes
from tests.helpers.services import OwnPostgres, OwnRedis
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from tests.helpers.stack import PY, REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CALL = "AAPL270115C00200000"
PUT = "MSFT270115P00400000"
SELL = {"enabled": True, "check_interval": 1, "order_cancel_minutes": 3, "max_exit_attempts": 2,
        "strategy_one": {"profit_rate": 1.1, "stop_loss_rate": 0.8}}


def buy(stack, account_id, symbol, qty=1):
    status, body, _ = stack.request("POST", "/api/v1/options/order", token=trader(account_id), body={
        "option_symbol": symbol, "qty": qty, "side": "buy", "type": "market", "time_in_force": "day", "auto_sell_enabled": True})
    assert status == 201, body
    return body


def sells(server):
    return [o for o in sim_orders(server) if o["side"] == "sell"]


def managed(stack) -> int:
    return query(stack, "SELECT COUNT(*) FROM sellbot_managedposition")[0][0]


def test_two_beats_and_a_killed_beat_never_sell_twice(stack_factory, sim, tmp_path):  # noqa: F811
    sim.set_price(CALL, bid=1.95, ask=2.00)
    sim.set_price(PUT, bid=2.95, ask=3.00)
    sim.set_clock(is_open=True)
    with OwnRedis() as redis, OwnPostgres() as pg:
        with stack_factory(beat_interval=1, env=stack_env(sim, secrets_file(tmp_path, sell_module=SELL), redis=redis, postgres=pg)) as stack:
            # a second beat started by mistake, with its own pidfile and schedule file
            log = open(tmp_path / "beat2.log", "ab")  # noqa: SIM115 - closed below
            beat2 = subprocess.Popen(
                [PY, "-m", "celery", "-A", "opitios", "beat", "-l", "INFO", "--pidfile", str(tmp_path / "beat2.pid"),
                 "-s", str(tmp_path / "beat2-schedule")],
                # its console must show the routine "Sending due task" lines this test counts (opitios/log_filters.py)
                cwd=REPO_ROOT, env={**stack.env, "OPITIOS_LOG_CONSOLE_LEVEL": "DEBUG"}, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            log.close()
            try:
                stack.wait_for(lambda: "beat: Starting" in (tmp_path / "beat2.log").read_text(), "the second beat", timeout=60)
                buy(stack, "account_001", CALL)
                buy(stack, "account_002", PUT)
                stack.wait_for(lambda: managed(stack) == 2, "the managed positions")
                sim.set_price(CALL, bid=2.30, ask=2.35)  # take profit
                sim.set_price(PUT, bid=2.20, ask=2.25)  # stop loss
                stack.wait_for(lambda: len([o for o in sells(sim) if o["status"] == "filled"]) == 2, "both exits", timeout=60)
                mark = stack.log_mark()
                beat2_sent = lambda: (tmp_path / "beat2.log").read_text().count("Sending due task sellbot.sweep")  # noqa: E731
                sent_before = beat2_sent()
                stack.wait_for(lambda: beat2_sent() >= sent_before + 2, "the second beat to keep sending sweeps", timeout=30)
                wait_for_bot_passes(stack, since=mark, sweeps=4, what="more sweeps from the two beats")
                assert sorted(o["symbol"] for o in sells(sim)) == sorted([CALL, PUT])

                # SIGKILL the first beat mid-schedule and start it again: the same entries, not doubled
                beat = stack._procs["beat"]
                os.killpg(beat.pid, signal.SIGKILL)
                beat.wait(timeout=10)
                offset = len(stack.output("beat"))
                stack._spawn("beat")
                stack.wait_for(lambda: "beat: Starting" in stack.output("beat")[offset:], "the restarted beat", timeout=60)
                sim.set_price(CALL, bid=1.95, ask=2.00)
                buy(stack, "account_001", CALL)
                stack.wait_for(lambda: managed(stack) == 3, "the third position")
                sim.set_price(CALL, bid=2.40, ask=2.45)
                stack.wait_for(lambda: len([o for o in sells(sim) if o["status"] == "filled"]) == 3, "the third exit", timeout=60)
                wait_for_bot_passes(stack, since=stack.log_mark(), sweeps=2, what="more sweeps after the third exit")
                # the beat's own clock: the span of its pings, not the test's, which lags on a busy machine
                def pings():
                    return [datetime.strptime(t, "%Y-%m-%d %H:%M:%S.%f") for t in re.findall(
                        r"^(\S+ \S+) INFO celery.beat \| Scheduler: Sending due task debug-ping", stack.output("beat")[offset:], re.M)]

                # enough of the restarted beat's schedule to see a doubling (the exit can come within its first 2 s)
                stack.wait_for(lambda: len(pings()) >= 5, "five pings from the restarted beat", timeout=60)
                sent = pings()
                span = (sent[-1] - sent[0]).total_seconds()
                assert len(sent) >= 3 and len(sent) <= span / 1.0 + 2, (len(sent), span)  # one entry at 1 s, not two
                assert len(sells(sim)) == 3
                rows = query(stack, "SELECT client_order_id, COUNT(*) FROM trading_orderrecord WHERE side = 'sell' GROUP BY client_order_id")
                assert len(rows) == 3 and all(n == 1 for _, n in rows), rows
            finally:
                if beat2.poll() is None:
                    os.killpg(beat2.pid, signal.SIGTERM)
                    try:
                        beat2.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        os.killpg(beat2.pid, signal.SIGKILL)
                        beat2.wait(timeout=5)


def test_sell_flow_in_tokyo_time_uses_aware_utc(stack_factory, sim, tmp_path):  # noqa: F811
    sim.set_price(CALL, bid=1.95, ask=2.00)
    sim.set_price(PUT, bid=2.95, ask=3.00)
    now = datetime.now(UTC)
    sim.set_clock(is_open=True, next_close=(now + timedelta(minutes=40)).isoformat())
    sell = {**SELL, "order_cancel_minutes": 0.02, "close_before_market_close_minutes": 15}
    with OwnRedis() as redis, OwnPostgres() as pg:
        with stack_factory(env=stack_env(sim, secrets_file(tmp_path, sell_module=sell), redis=redis, postgres=pg, TZ="Asia/Tokyo")) as stack:
            assert "+0900" in subprocess.run(["date", "+%z"], env=stack.env, capture_output=True, text=True).stdout
            buy(stack, "account_001", CALL)
            buy(stack, "account_002", PUT)
            stack.wait_for(lambda: managed(stack) == 2, "the managed positions")

            # a stop-loss exit that cannot fill goes stale after 1.2 s and is cancelled: its age is seconds, not hours
            sim.set_price(PUT, price=2.00, illiquid=True)
            stack.wait_for(lambda: query(stack, "SELECT COUNT(*) FROM sellbot_sellcancellation")[0][0] >= 1, "a stale exit cancelled", timeout=60)
            ages = [a for (a,) in query(stack, "SELECT age_seconds FROM sellbot_sellcancellation")]
            assert all(1.2 <= a < 30 for a in ages), ages
            wait_for_bot_passes(stack, since=stack.log_mark(), checks=4, what="both accounts checked again")
            assert not [o for o in sells(sim) if o["symbol"] == CALL], "40 minutes to the close is outside the 15-minute window"

            # the close is 10 minutes away (in UTC): inside the window, the call is sold for market_close
            sim.set_clock(next_close=(datetime.now(UTC) + timedelta(minutes=10)).isoformat())
            stack.wait_for(lambda: [o for o in sells(sim) if o["symbol"] == CALL], "the market-close exit", timeout=60)
            reasons = {s: r for s, r in query(stack, "SELECT symbol, reason FROM sellbot_selldecision")}
            assert reasons[CALL] == "market_close" and reasons[PUT] == "stop_loss", reasons

            check = datetime.now(UTC)
            for received, submitted, responded, completed in query(
                    stack, "SELECT received_at, submitted_at, responded_at, completed_at FROM trading_orderrecord"):
                for at in (received, submitted, responded, completed):
                    assert at is not None and at.utcoffset() is not None
                    assert timedelta(0) <= check - at < timedelta(minutes=2), (at, check)
            status, body = stack.get("/api/v1/orders?account_id=account_001&status=all", token=trader("account_001"))
            assert status == 200 and body
