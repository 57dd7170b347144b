"""A full sell sweep over many accounts: 1000 accounts x 5 managed positions, one Celery worker
with its production pool (2 prefork processes, niced; OPITIOS_WORKER_CONCURRENCY / OPITIOS_WORKER_NICE),
and API p95 during the sweep against idle, in one run.

Setup: alpacasim with ``--accounts N`` (rate limit off); a generated secrets.yml for those accounts
(sell bot enabled); the whole-stack harness (tests/helpers/stack.py: gunicorn + the worker, no beat,
PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set, else SQLite and the filesystem broker). Every
account buys its options in alpacasim; the matching ManagedPosition rows are inserted with a high-water
mark just under the mark, so every position holds (no exit) and its evaluation is visible in the database.

Method, two phases. (1) The sweep target: ``sellbot.sweep`` is sent with nothing else running; sweep_seconds
runs from sending it to the last evaluation (``last_evaluated_at`` set on every position). (2) The API target:
the marks are reset, a client loop sends GET /api/v1/stocks/AAPL/quote back to back (one keep-alive session)
for ``--idle-seconds``, then a second sweep is sent and the loop runs on until every position is evaluated again.
p95 idle vs p95 during that sweep; ``timeline`` holds [t_seconds since the sweep began, p95_ms] per window.

    python -m bench.sell_sweep [--accounts 1000] [--positions 5] [--smoke]

The last stdout line is one JSON object (``make bench`` parses it).
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from alpacasim.accounts import generated_credentials  # noqa: E402
from bench.gateway import pct  # noqa: E402
from opitios.auth import issue_token  # noqa: E402
from tests.helpers.sim import SimServer  # noqa: E402
from tests.helpers.stack import Stack  # noqa: E402

SYMBOLS = ["AAPL270115C00200000", "MSFT270115C00400000", "SPY270115C00600000", "QQQ270115C00500000", "TSLA270115C00300000",
           "NVDA270115C00150000", "AMZN270115C00200000", "META270115C00600000"]
SEED_POSITIONS = """
from decimal import Decimal
from django.utils import timezone
from accounts.models import AlpacaAccount
from sellbot.models import ManagedPosition
symbols = {symbols!r}
now = timezone.now()
rows = [ManagedPosition(account=a, symbol=s, qty=Decimal(1), entry_price=Decimal("1.90"), high_water_mark=Decimal("1.90"),
                        opened_at=now) for a in AlpacaAccount.objects.filter(enabled=True) for s in symbols]
ManagedPosition.objects.bulk_create(rows, batch_size=1000)
print(len(rows))
"""

# Back to "evaluated never, high-water mark under the mark": the next sweep evaluates and moves every mark again.
RESET_MARKS = """
from decimal import Decimal
from sellbot.models import ManagedPosition
print(ManagedPosition.objects.update(high_water_mark=Decimal("1.90"), last_price=None, last_evaluated_at=None))
"""


def secrets_for(n: int) -> dict:
    accounts = {}
    for i in range(1, n + 1):
        key, secret = generated_credentials(i)
        accounts[f"acct_{i:04d}"] = {"api_key": key, "secret_key": secret, "paper_trading": True}
    return {
        "jwt": {"algorithm": "HS256"},
        "trading": {"minimum_balance": 1000, "balance_max_age_seconds": 0},
        "rate_limits": {k: "10000000/min" for k in ("stock_quote", "quotes_batch", "stock_order", "option_order", "default")},
        "sell_module": {"enabled": True, "check_interval": 3600, "order_cancel_minutes": 1000,
                        "strategy_one": {"profit_rate": 1.1, "stop_loss_rate": 0.8}},
        "accounts": accounts,
    }


def query_scalar(stack: Stack, sql: str):
    if stack.env.get("DATABASE_URL"):
        import psycopg

        with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
            return conn.execute(sql).fetchone()[0]
    with sqlite3.connect(stack.root / "var" / "db.sqlite3", timeout=10) as conn:
        return conn.execute(sql).fetchone()[0]


def buy_positions(sim: SimServer, n: int, symbols: list[str]) -> None:
    def buy(i: int) -> None:
        key, secret = generated_credentials(i)
        session = requests.Session()
        session.headers.update({"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret})
        for symbol in symbols:
            r = session.post(f"{sim.paper_url}/v2/orders", json={"symbol": symbol, "qty": "1", "side": "buy", "type": "market",
                                                                  "time_in_force": "day"}, timeout=10)
            r.raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(buy, range(1, n + 1)))


class Load:
    """Back-to-back API requests on one keep-alive session, each recorded as (monotonic start, ms)."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.samples, self.errors = url, [], 0
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                ok = self.session.get(self.url, timeout=10).status_code == 200
            except requests.RequestException:
                ok = False
            if ok:
                self.samples.append((t0, (time.monotonic() - t0) * 1000))
            else:
                self.errors += 1

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def between(self, start: float, end: float) -> list[float]:
        return [ms for t, ms in list(self.samples) if start <= t < end]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--positions", type=int, default=5, help="managed positions per account (at most 8)")
    ap.add_argument("--idle-seconds", type=float, default=8.0)
    ap.add_argument("--window", type=float, default=1.0, help="timeline window, seconds")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--smoke", action="store_true", help="20 accounts x 2 positions, a short idle phase")
    args = ap.parse_args(argv)
    if args.smoke:
        args.accounts, args.positions, args.idle_seconds = 20, 2, 2.0
    symbols = SYMBOLS[: args.positions]
    n, total = args.accounts, args.accounts * len(symbols)

    root = Path(tempfile.mkdtemp(prefix="opitios-bench-sweep-"))
    sim = SimServer(seed=11, rate_limit=False, accounts=n).start()
    stack = None
    try:
        sim.set_clock(is_open=True)
        for symbol in symbols:
            sim.set_price(symbol, bid=1.95, ask=2.00)
        sim.set_price("AAPL", bid=199.9, ask=200.1)
        (root / "secrets.yml").write_text(yaml.safe_dump(secrets_for(n)))
        stack = Stack(root / "stack", processes=("web", "worker"), start_timeout=120, env={
            "OPITIOS_SECRETS": str(root / "secrets.yml"), "ALPACA_PAPER_URL": sim.paper_url, "ALPACA_LIVE_URL": sim.live_url,
            "ALPACA_DATA_URL": sim.data_url,
        }).start()
        stack.manage("sync_accounts", timeout=300)  # with paper/live detection
        t = time.monotonic()
        buy_positions(sim, n, symbols)
        seeded = int(stack.manage("shell", "-c", SEED_POSITIONS.format(symbols=symbols)).strip().splitlines()[-1])
        assert seeded == total, (seeded, total)
        setup_s = time.monotonic() - t

        def sweep_until_evaluated() -> tuple[float, float, int]:
            """Send one sweep; wait until every position carries an evaluation. (start, end, evaluated)"""
            started = time.monotonic()
            stack.celery().send_task("sellbot.sweep")
            evaluated = 0
            while time.monotonic() - started < args.timeout:
                evaluated = query_scalar(stack, "SELECT COUNT(*) FROM sellbot_managedposition WHERE last_evaluated_at IS NOT NULL")
                if evaluated >= total:
                    break
                time.sleep(0.05)
            return started, time.monotonic(), evaluated

        # Phase 1, the sweep target: the sweep alone on the stack.
        alone_start, alone_end, alone_evaluated = sweep_until_evaluated()
        stack.manage("shell", "-c", RESET_MARKS)

        # Phase 2, the API target: a back-to-back API client, idle, then during a second full sweep.
        token = issue_token(user_id="bench", permissions=["market_data"], ttl_seconds=3600)
        load = Load(stack.url("/api/v1/stocks/AAPL/quote"), token)
        for _ in range(20):  # warm the web worker
            load.session.get(load.url, timeout=10)
        load.start()
        idle_start = time.monotonic()
        time.sleep(args.idle_seconds)
        sweep_start, sweep_end, evaluated = sweep_until_evaluated()
        load.stop()
        decisions = query_scalar(stack, "SELECT COUNT(*) FROM sellbot_selldecision")

        idle = load.between(idle_start, sweep_start)
        during = load.between(sweep_start, sweep_end)
        timeline, w = [], sweep_start
        while w < sweep_end:
            window = load.between(w, min(w + args.window, sweep_end))
            if window:
                timeline.append([round(w - sweep_start, 2), round(pct(window, 95), 2)])
            w += args.window
        idle_p95, sweep_p95 = pct(idle, 95), pct(during, 95)
        result = {
            "bench": "sell_sweep",
            "accounts": n,
            "positions": total,
            "positions_per_account": len(symbols),
            "worker_processes": settings.CELERY_WORKER_CONCURRENCY,
            "worker_nice": settings.OPITIOS_WORKER_NICE,
            "sweep_seconds": round(alone_end - alone_start, 2),
            "evaluated": alone_evaluated,
            "complete": alone_evaluated >= total,
            "sweep_under_api_load_seconds": round(sweep_end - sweep_start, 2),
            "evaluated_under_api_load": evaluated,
            "sell_decisions": decisions,
            "sweep_target_seconds": 10,
            "idle_p95_ms": round(idle_p95, 2) if idle_p95 else None,
            "sweep_p95_ms": round(sweep_p95, 2) if sweep_p95 else None,
            "idle_p50_ms": round(pct(idle, 50), 2) if idle else None,
            "sweep_p50_ms": round(pct(during, 50), 2) if during else None,
            "ratio": round(sweep_p95 / idle_p95, 3) if idle_p95 and sweep_p95 else None,
            "ratio_target": 1.1,
            "requests_idle": len(idle),
            "requests_sweep": len(during),
            "request_errors": load.errors,
            "timeline": timeline,
            "setup_seconds": round(setup_s, 1),
            "database": "postgresql" if stack.env.get("DATABASE_URL") else "sqlite",
            "broker": "redis" if os.environ.get("REDIS_URL") else "filesystem",
            "method": "one worker with the production pool settings (OPITIOS_WORKER_CONCURRENCY prefork processes at niceness "
                      "OPITIOS_WORKER_NICE). sweep_seconds: sellbot.sweep sent with nothing else running, timed until every managed "
                      "position is evaluated. Then the marks are reset and GET /api/v1/stocks/AAPL/quote runs back to back on one "
                      "keep-alive session: an idle phase, then a second full sweep (sweep_under_api_load_seconds); p95 of each phase",
        }
        print(json.dumps(result))
        return result
    finally:
        if stack is not None:
            stack.stop(check=False)
        sim.stop()


if __name__ == "__main__":
    main()
