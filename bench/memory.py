"""Peak memory (RSS) of a web worker and a Celery worker with N accounts loaded (issue 8, item 7).

    python -m bench.memory            # 1000 accounts
    python -m bench.memory --smoke    # 20 accounts

Starts alpacasim with N accounts and the real stack (tests/helpers/stack.py: gunicorn with the production
worker settings, WEB_CONCURRENCY=2, and a Celery worker with --concurrency 2) on a throwaway var/ and
database. Loads the accounts in both: the worker runs ``accounts.detect_types`` and
``accounts.refresh_balances`` over all N; the web workers serve the admin pool view (every account), /ready
and quotes routed across the pool. Then reads each process's VmHWM (peak resident set) from /proc.
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def peaks(pids: list[int]) -> list[dict]:
    out = []
    for pid in pids:
        hwm, rss = status_kb(pid, "VmHWM"), status_kb(pid, "VmRSS")
        if hwm is not None:
            out.append({"pid": pid, "peak_rss_mb": round(hwm / 1024, 1), "rss_mb": round((rss or 0) / 1024, 1)})
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--quotes", type=int, default=200, help="quotes sent through the web workers")
    parser.add_argument("--smoke", action="store_true", help="20 accounts, a quick check that the bench works")
    args = parser.parse_args()
    n, quotes = (20, 10) if args.smoke else (args.accounts, args.quotes)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.test")
    import django

    django.setup()
    import requests

    from bench.accounts_scale import write_secrets
    from opitios.auth import issue_token
    from tests.helpers.sim import SimServer
    from tests.helpers.stack import Stack

    with tempfile.TemporaryDirectory(prefix="opitios-bench-mem-") as tmp, SimServer(config=None, accounts=n, rate_limit=False, seed=1) as sim:
        tmp = Path(tmp)
        write_secrets(tmp / "secrets.yml", n)
        env = {
            "OPITIOS_SECRETS": str(tmp / "secrets.yml"),
            "ALPACA_PAPER_URL": sim.paper_url,
            "ALPACA_LIVE_URL": sim.live_url,
            "ALPACA_DATA_URL": sim.data_url,
            "WEB_CONCURRENCY": "2",
            "DJANGO_DEBUG": "false",
        }
        stack = Stack(tmp / "stack", processes=("web", "worker"), env=env, start_timeout=120, stop_timeout=20)
        with stack:
            started = time.perf_counter()
            celery = stack.celery()
            celery.send_task("accounts.detect_types")
            celery.send_task("accounts.refresh_balances")
            count = ("from accounts.models import AlpacaAccount as A, BalanceSnapshot as B; "
                     "print(A.objects.filter(detected_at__isnull=False).count(), B.objects.count())")

            seen: list[tuple[int, int]] = []

            def loaded() -> bool:
                # all accounts done, or the worker has stopped making progress (a task hit its time limit
                # on a loaded machine): the memory of what it did is still what we want to read
                seen.append(tuple(int(x) for x in stack.manage("shell", "-c", count).split()[-2:]))
                return min(seen[-1]) >= n or (len(seen) >= 6 and len(set(seen[-4:])) == 1)

            stack.wait_for(loaded, f"detection and a balance for {n} accounts", timeout=180)
            worker_load_s = time.perf_counter() - started

            admin = issue_token(user_id="bench", permissions=["admin"], ttl_seconds=600)
            session = requests.Session()
            statuses: dict[int, int] = {}
            for path in ("/api/v1/ready", "/api/v1/admin/pool", "/api/v1/health/detailed"):
                for _ in range(4):  # more than once, so both web workers likely serve it
                    r = session.get(stack.url(path), headers={"Authorization": f"Bearer {admin}"}, timeout=60)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            for i in range(quotes):
                symbol = ("AAPL", "MSFT", "SPY", "TSLA")[i % 4]
                r = session.get(stack.url(f"/api/v1/stocks/{symbol}/quote"), headers={"Authorization": f"Bearer {admin}"}, timeout=30)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

            procs = stack._procs
            web_workers = peaks(children(procs["web"].pid))
            worker_main = peaks([procs["worker"].pid])
            worker_pool = peaks(children(procs["worker"].pid))

    def top(rows: list[dict]) -> float | None:
        return max((r["peak_rss_mb"] for r in rows), default=None)

    result = {
        "accounts": n,
        "web_worker_peak_rss_mb": top(web_workers),
        "celery_worker_peak_rss_mb": top(worker_main + worker_pool),
        "celery_worker_total_peak_rss_mb": round(sum(r["peak_rss_mb"] for r in worker_main + worker_pool), 1),
        "web_workers": web_workers,
        "celery_main": worker_main,
        "celery_pool": worker_pool,
        "worker_load_s": round(worker_load_s, 2),
        "accounts_detected": seen[-1][0],
        "balances_fetched": seen[-1][1],
        "web_statuses": statuses,
        "method": "VmHWM from /proc after detect_types + refresh_balances over all accounts and web requests",
        "database": "postgresql" if os.environ.get("DATABASE_URL") else "sqlite",
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
