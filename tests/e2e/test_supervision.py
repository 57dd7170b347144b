"""One crashed process must not stop the system (issue 12). `make run` (`python -m opitios.run`, supervisord)
in demo mode on a PostgreSQL and a Redis of the test's own, with orders flowing throughout:

- each kind of process is SIGKILLed in turn (web master, worker, beat, simulator) and comes back under a
  new pid, healthy, while the others keep running;
- Redis is stopped, then started again: the worker survives it or is restarted, background work resumes;
- PostgreSQL is restarted: the system comes back without help.

Orders get no 5xx from a kill or from Redis; while the web master is down, "connection refused" is the
only acceptable failure (counted and stated); while the simulator (the broker) or PostgreSQL is down the
API answers 503 ``broker_unavailable`` / ``database_unavailable`` by design (SPEC §12), counted separately.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from opitios.auth import issue_token
from tests.helpers.processes import alive, describe, free_port, kill_all, process_tree, wait_gone
from tests.helpers.services import OwnPostgres, OwnRedis
from tests.helpers.stack import REPO_ROOT, stack_environment
from tests.helpers.traffic import Traffic

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROGRAMS = ("sim", "web", "worker", "beat", "flower", "listener")


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


class MakeRun:
    def __init__(self, root, env: dict[str, str]) -> None:
        self.out_path = root / "make-run.log"
        self.app_log = root / "logs" / "app" / "opitios.log"
        self.web = f"http://127.0.0.1:{env['OPITIOS_WEB_PORT']}"
        self.sim = f"http://127.0.0.1:{env['OPITIOS_SIM_PORT']}"
        with open(self.out_path, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "opitios.run"], cwd=REPO_ROOT, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.children: set = set()

    def url(self, path: str) -> str:  # what tests.helpers.traffic.Traffic calls
        return f"{self.web}{path}"

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def app(self) -> str:
        return self.app_log.read_text(errors="replace") if self.app_log.exists() else ""

    def pid(self, name: str) -> int | None:
        spawned = re.findall(rf"spawned: '{name}' with pid (\d+)", self.output())
        return int(spawned[-1]) if spawned else None

    def started(self, name: str) -> int:
        return self.output().count(f"success: {name} entered RUNNING state")

    def up(self, name: str) -> bool:
        pid = self.pid(name)
        return pid is not None and bool(alive({p for p in process_tree(self.proc.pid) if p[0] == pid}))

    def wait_for(self, predicate, what: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            self.children |= process_tree(self.proc.pid)
            assert self.proc.poll() is None, f"make run exited ({self.proc.returncode}):\n{self.output()[-6000:]}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.output()[-6000:]}"
            time.sleep(0.3)

    def stop(self) -> None:
        self.children |= process_tree(self.proc.pid)
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        kill_all(wait_gone(self.children, timeout=10))


def _post(url: str, body: dict, token: str | None = None) -> int:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def _admin_post(run: MakeRun, path: str, body: dict) -> None:
    assert _post(run.url(path), body, issue_token(user_id="sup-admin", permissions=["admin"])) == 200


def _sim_post(run: MakeRun, path: str, body: dict) -> None:
    assert _post(f"{run.sim}{path}", body) == 200


def _held_check(app_log: str) -> str | None:
    """The id of a sellbot.check_account the worker has received and not yet finished, if any."""
    received = re.findall(r"Task sellbot\.check_account\[([0-9a-f-]+)\] received", app_log)
    finished = set(re.findall(r"Task sellbot\.check_account\[([0-9a-f-]+)\] (?:succeeded|raised|retry)", app_log))
    return next((task for task in received if task not in finished), None)


def orders():
    """A 1-share market buy on account_001, each from a fresh user (the demo's throttle is per user)."""
    def make(n: int):
        token = issue_token(user_id=f"sup-{n}-{time.monotonic_ns()}", permissions=["trading", "account_access"], account_id="account_001")
        return "POST", "/api/v1/stocks/order", {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market",
                                                 "time_in_force": "day", "client_order_id": f"sup-{n}-{time.monotonic_ns()}"}, token
    return make


def test_every_process_restarts_after_a_kill_and_the_system_survives_redis_and_postgres(tmp_path):
    with OwnRedis() as redis, OwnPostgres() as pg:
        env, shared_database = stack_environment(tmp_path, env={"DATABASE_URL": pg.url("opitios_supervision"), "REDIS_URL": redis.url(0)})
        if shared_database is not None:
            shared_database.drop()  # made for the shared server; this stack uses its own cluster
        env.update(OPITIOS_WEB_PORT=str(free_port()), OPITIOS_SIM_PORT=str(free_port()), OPITIOS_FLOWER_PORT=str(free_port()), OPITIOS_WS_PORT=str(free_port()),
                   WEB_CONCURRENCY="1")
        for key in ("GUNICORN_BIND", "OPITIOS_SECRETS", "ALPACA_PAPER_URL", "ALPACA_LIVE_URL", "ALPACA_DATA_URL"):
            env.pop(key, None)  # demo mode: make run starts the simulator and points the accounts at it
        run = MakeRun(tmp_path, env)
        try:
            run.wait_for(lambda: all(run.started(name) for name in PROGRAMS), "every program RUNNING", timeout=180)
            run.wait_for(lambda: _status(f"{run.web}/api/v1/health") == 200, "the API", timeout=120)
            run.wait_for(lambda: "account type detection: paper=3 live=1" in run.app(), "the demo accounts detected", timeout=120)

            with Traffic(run, {"order": orders()}, pause=0.1, deadline=900, timeout=20) as traffic:
                run.wait_for(lambda: len(traffic.where(status=201)) >= 5, "orders before any fault")
                windows: dict[str, tuple[float, float]] = {}

                # --- SIGKILL each kind of process in turn ---------------------------------------------------
                for name in ("web", "worker", "beat", "listener", "sim"):
                    old, starts = run.pid(name), run.started(name)
                    assert old is not None and run.up(name), run.output()[-4000:]
                    before_started_at = _worker_started_at(pg) if name == "worker" else None
                    work_before = (run.app().count("celery.app.trace | Task "), run.app().count("Sending due task "))
                    ready_before = run.app().count(" ready.\n")
                    killed_at = time.monotonic()
                    os.kill(old, signal.SIGKILL)
                    run.wait_for(lambda n=name, o=old, s=starts: run.started(n) > s and run.pid(n) != o and run.up(n),
                                 f"{name} restarted under a new pid")
                    assert re.search(rf"exited: {name} \(terminated by SIGKILL; not expected\)", run.output())
                    if name == "web":
                        run.wait_for(lambda: _status(f"{run.web}/api/v1/health") == 200, "the API back")
                    elif name == "worker":
                        # the new worker recorded its start (the watchdog's grace restarts), got ready, and runs tasks
                        run.wait_for(lambda b=before_started_at: _worker_started_at(pg) != b, "the new worker's start recorded")
                        run.wait_for(lambda r=ready_before: run.app().count(" ready.\n") > r, "the new worker ready")
                        traced = run.app().count("celery.app.trace | Task ")
                        run.wait_for(lambda b=traced: run.app().count("celery.app.trace | Task ") > b, "a task run by the new worker")
                    elif name == "beat":
                        run.wait_for(lambda b=work_before[1]: run.app().count("Sending due task ") > b, "a task sent by the new beat")
                    elif name == "sim":
                        run.wait_for(lambda: _status(f"{run.sim}/_sim/health") == 200, "the simulator back")
                    # the listener: back under a new pid (above) is its whole contract here; tests/lifecycle covers its work
                    back_at = time.monotonic()
                    windows[name] = (killed_at, back_at)
                    run.wait_for(lambda t=back_at: len([a for a in traffic.since(t) if a.status == 201]) >= 3, f"orders after the {name} kill")
                    assert all(run.up(n) for n in PROGRAMS), describe(process_tree(run.proc.pid))

                # --- Redis goes away while orders flow and the worker holds an unacknowledged task ----------
                # sellbot.check_account is acks_late; a slow broker keeps one in the worker's hands (the path
                # where kombu's redis transport crashed restoring unacked messages: issue 12).
                _admin_post(run, "/api/v1/sell/control", {"action": "start"})
                _sim_post(run, "/_sim/latency", {"route": "orders_list", "ms": 20000})
                _send_check(redis.url(0), _account_pk(pg, "account_001"))
                run.wait_for(lambda: _held_check(run.app()) is not None, "a sell-bot check held unacknowledged by the worker", timeout=180)
                held_task, worker_exits = _held_check(run.app()), run.output().count("exited: worker")
                redis_down = time.monotonic()
                redis.stop()
                run.wait_for(lambda: len([a for a in traffic.since(redis_down + 2) if a.status == 201]) >= 5, "orders with Redis down")
                redis.start()
                redis_up = time.monotonic()
                _sim_post(run, "/_sim/latency", {"route": "orders_list", "ms": 0})
                windows["redis"] = (redis_down, redis_up)
                work_at_up = run.app().count("celery.app.trace | Task ")
                run.wait_for(lambda: all(run.up(n) for n in PROGRAMS), "every program up after the Redis outage", timeout=180)
                run.wait_for(lambda: run.app().count("celery.app.trace | Task ") > work_at_up, "background work after Redis returned", timeout=180)
                run.wait_for(lambda: len([a for a in traffic.since(redis_up) if a.status == 201]) >= 5, "orders after Redis returned")
                print(f"\nsupervision: the worker held check {held_task} when Redis stopped; worker exits during the outage: "
                      f"{run.output().count('exited: worker') - worker_exits} (supervisord restarts it if kombu crashes)")

                # --- PostgreSQL restarts ----------------------------------------------------------------------
                pg_down = time.monotonic()
                pg.restart(gap=2)
                pg_up = time.monotonic()
                windows["postgres"] = (pg_down, pg_up)
                work_before = run.app().count("celery.app.trace | Task ")
                run.wait_for(lambda: len([a for a in traffic.since(pg_up) if a.status == 201]) >= 5, "orders after PostgreSQL returned")
                run.wait_for(lambda: run.app().count("celery.app.trace | Task ") > work_before, "background work after PostgreSQL returned")
                assert all(run.up(n) for n in PROGRAMS), describe(process_tree(run.proc.pid))

            answers = traffic.answers
            summary = traffic.summary()

            def during(window: str, answer) -> bool:
                """The request was in flight at some point of the window (or within a second after it)."""
                start, end = windows[window]
                return answer.at + answer.elapsed >= start and answer.at <= end + 1.0

            refused_web = [a for a in answers if a.status == 0 and during("web", a)]
            other_transport = [a for a in answers if a.status == 0 and not during("web", a)]
            # the simulator is the broker: while it is down, 503 broker_unavailable is the truthful answer
            broker_503 = [a for a in answers if a.status == 503 and a.code == "broker_unavailable" and during("sim", a)]
            pg_503 = [a for a in answers if a.status == 503 and a.code == "database_unavailable" and during("postgres", a)]
            server_errors = [a for a in answers if a.status >= 500 and a not in pg_503 and a not in broker_503]
            print(f"\nsupervision: {len(answers)} orders, {len(traffic.where(status=201))} accepted; {len(refused_web)} refused "
                  f"while the web master restarted; {len(broker_503)} answered 503 broker_unavailable while the simulator "
                  f"restarted; {len(pg_503)} answered 503 database_unavailable during the PostgreSQL restart; summary {summary}")
            assert not server_errors, (summary, [(a.code, {w: round(a.at - t[0], 1) for w, t in windows.items()}) for a in server_errors])
            assert not other_transport, (summary, [(a.code, round(a.at - windows["web"][0], 1)) for a in other_transport])
            # 429 upstream_rate_limited: the demo accounts' Alpaca budget, an answer like any other
            assert {a.status for a in answers} <= {0, 201, 429, 503}, summary
            # every process is up, and each was restarted exactly where the test killed it
            assert all(run.up(n) for n in PROGRAMS)
            assert "sellbot stalled" not in run.app()
        finally:
            run.stop()
        assert "received SIGTERM indicating exit request" in run.output()


def _account_pk(pg, account_id: str) -> int:
    import psycopg

    with psycopg.connect(pg.url("opitios_supervision", create=False), connect_timeout=5) as conn:
        return conn.execute("SELECT id FROM accounts_alpacaaccount WHERE account_id = %s", (account_id,)).fetchone()[0]


def _send_check(broker_url: str, account_pk: int) -> None:
    """What a sweep sends for an account with something to do (the demo has nothing to manage)."""
    from celery import Celery

    app = Celery("supervision-test", broker=broker_url)
    try:
        app.send_task("sellbot.check_account", args=(account_pk,))
    finally:
        app.close()


def _worker_started_at(pg):
    import psycopg

    with psycopg.connect(pg.url("opitios_supervision", create=False), connect_timeout=5) as conn:
        row = conn.execute("SELECT worker_started_at FROM sellbot_sellbotstate WHERE id = 1").fetchone()
    return row[0] if row else None
