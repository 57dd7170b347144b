"""Gateway overhead of a stock order, measured from the client: POST /api/v1/stocks/order through
gunicorn (JWT, throttle with raised limits, balance check with default settings, OrderRecord, audit,
log) versus the same order sent by alpaca-py straight to alpacasim, in interleaved pairs.

Method: a sequential Python loop (requests / alpaca-py on keep-alive sessions) timing each request
with perf_counter. Each pair is one gateway order and one direct order, their order alternating
from pair to pair (so neither side always runs second); the headline ``overhead_ms`` is the
percentiles of the per-pair differences (gateway minus direct), over 300 pairs after a warm-up.
The Celery worker, beat, the trade-updates listener and Flower (with Redis) run beside gunicorn as
`make run` runs them, the processes that react to an order (``--alone`` leaves them out; ``--companions``
names others). The listener writes each order's ``new`` and ``fill`` events to the ledger while the next
orders run, as in production. The direct orders go to an alpacasim account the gateway does not know, so
the listener never sees them. ``cpu_ms_per_order`` is each process's CPU per measured pair (/proc, from
the first measured pair until 3 s after the last, for the trailing fills and balance refreshes):
alpacasim and the client include the direct orders. (``make run`` also runs the ticks worker, the ws
process and the hub: they react to market data, not to orders, and are left out.) Server-side figures are info: the record's ``overhead_ms`` (total_ms − broker_ms) and
``request_total_ms`` from the Server-Timing header, each minus the record's ``broker_ms``; and the
difference of the two sides' percentiles. The gateway runs with the production settings and
``opitios/gunicorn.conf.py`` (see bench/gateway.py); embedded or PostgreSQL + Redis follows the
environment (DATABASE_URL, REDIS_URL).

    python -m bench.order_overhead [--orders 300] [--smoke] [--alone | --companions worker,beat] [--json out.json]

Prints one JSON object (the last line of stdout).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import PostgresBackends, gateway_stack, pct, stack_cpu, stack_cpu_per_unit  # noqa: E402

TARGET = {"p50": 5, "p95": 10}


def summary(values: list[float]) -> dict:
    return {"p50": round(pct(values, 50), 3), "p95": round(pct(values, 95), 3), "p99": round(pct(values, 99), 3),
            "mean": round(statistics.fmean(values), 3), "n": len(values)}


COMPANIONS = ("worker", "beat", "listener", "flower")
# The direct orders' account: alpacasim only, unknown to the gateway (so no trade stream of the listener's).
DIRECT_KEY, DIRECT_SECRET = "PKBENCHDIRECT0000001", "bench-direct-orders-only"
SETTLE_SECONDS = 3.0


def wait_for_worker(gw, timeout: float = 120) -> None:
    """The worker answers a ping: its per-order balance refreshes are part of what is measured."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ping = subprocess.run([sys.executable, "-m", "celery", "-A", "opitios", "inspect", "ping", "--timeout", "5"],
                              cwd=Path(__file__).resolve().parent.parent, env=gw.env, capture_output=True, text=True)
        if ping.returncode == 0 and "pong" in ping.stdout:
            return
        if gw.companions["worker"].poll() is not None:
            raise SystemExit("the Celery worker exited")
    raise SystemExit("the Celery worker did not answer a ping")


_LISTENER_READY = ("import sys; from django.core.cache import cache; from lifecycle.listener import shard_key; "
                   "s = cache.get(shard_key(0)) or {}; sys.exit(0 if s.get('expected') and s['connected'] == s['expected'] else 1)")


def wait_for_listener(gw, timeout: float = 120) -> None:
    """Every account's trade stream is connected (and reconciled), as the listener publishes it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = subprocess.run([sys.executable, "manage.py", "shell", "-c", _LISTENER_READY],
                               cwd=Path(__file__).resolve().parent.parent, env=gw.env, capture_output=True, text=True)
        if ready.returncode == 0:
            return
        if gw.companions["listener"].poll() is not None:
            raise SystemExit("the trade-updates listener exited")
        time.sleep(1)
    raise SystemExit("the trade-updates listener did not connect its streams")


def server_ms(response) -> float:
    return float(response.headers["Server-Timing"].split("dur=", 1)[1])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=300, help="measured pairs")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--workers", type=int, help="WEB_CONCURRENCY for gunicorn (default: the gunicorn.conf.py default)")
    ap.add_argument("--threads", type=int, help="GUNICORN_THREADS (default: the gunicorn.conf.py default)")
    ap.add_argument("--alone", action="store_true", help="gunicorn only: no Celery worker, beat, listener or Flower beside it")
    ap.add_argument("--companions", help=f"comma-separated processes beside gunicorn (default: {','.join(COMPANIONS)})")
    ap.add_argument("--smoke", action="store_true", help="a quick run (20 pairs) that proves the bench works")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    if args.smoke:
        args.orders, args.warmup = 20, 5

    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest

    # As `make run`: Flower only with Redis.
    wanted = tuple(args.companions.split(",")) if args.companions else COMPANIONS
    companions = () if args.alone else tuple(c for c in wanted if c and (c != "flower" or os.environ.get("REDIS_URL")))
    with gateway_stack(workers=args.workers, threads=args.threads, companions=companions) as gw, PostgresBackends() as backends:
        if "worker" in companions:
            wait_for_worker(gw)
        if "listener" in companions:
            wait_for_listener(gw)
        gw.sim.upsert_account(DIRECT_KEY, secret_key=DIRECT_SECRET)
        direct = TradingClient(DIRECT_KEY, DIRECT_SECRET, paper=True, url_override=gw.sim.paper_url)
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {gw.token}"
        body = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}

        def via_gateway(i: int) -> tuple[float, requests.Response]:
            t0 = time.perf_counter()
            r = api.post(f"{gw.base_url}/api/v1/stocks/order", json=body, timeout=10)
            elapsed = (time.perf_counter() - t0) * 1000
            if r.status_code != 201:
                raise SystemExit(f"order {i} answered {r.status_code}: {r.text[:500]}")
            return elapsed, r

        def straight(i: int) -> float:
            t0 = time.perf_counter()
            direct.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                                                   client_order_id=f"direct-{i}-{time.time_ns()}"))
            return (time.perf_counter() - t0) * 1000

        api_ms, direct_ms, record_overhead, request_overhead = [], [], [], []
        for i in range(args.warmup + args.orders):
            if i == args.warmup:
                cpu_before = stack_cpu(gw, backends)
            if i % 2:
                d = straight(i)
                a, r = via_gateway(i)
            else:
                a, r = via_gateway(i)
                d = straight(i)
            if i >= args.warmup:
                timing = r.json()["timing"]
                api_ms.append(a)
                direct_ms.append(d)
                record_overhead.append(timing["overhead_ms"])
                request_overhead.append(server_ms(r) - (timing["broker_ms"] or 0.0))
        time.sleep(SETTLE_SECONDS)  # the last orders' fills and refreshes belong to them
        cpu_per_order = stack_cpu_per_unit(cpu_before, stack_cpu(gw, backends), args.orders)
        api_s, direct_s = summary(api_ms), summary(direct_ms)
        paired = summary([a - d for a, d in zip(api_ms, direct_ms, strict=True)])
        result = {
            "bench": "order_overhead",
            "method": "sequential Python loop, perf_counter per request; pairs of one gateway and one direct order, "
                      "alternating which goes first, keep-alive sessions; overhead = percentiles of the per-pair differences",
            **gw.info,
            "orders": args.orders,
            "pairs": args.orders,
            "warmup": args.warmup,
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            "api_ms": api_s,
            "direct_ms": direct_s,
            "overhead_ms": {k: paired[k] for k in ("p50", "p95", "p99", "mean")},
            "paired_overhead_ms": paired,
            "percentile_difference_ms": {k: round(api_s[k] - direct_s[k], 3) for k in ("p50", "p95", "p99")},
            "server_reported_overhead_ms": summary(record_overhead),
            "server_request_overhead_ms": summary(request_overhead),
            "cpu_ms_per_order": cpu_per_order,
            "target": TARGET,
            "ok": paired["p50"] <= TARGET["p50"] and paired["p95"] <= TARGET["p95"],
            "samples": {"api_ms": [round(v, 3) for v in api_ms], "direct_ms": [round(v, 3) for v in direct_ms],
                        "server_overhead_ms": record_overhead, "server_request_overhead_ms": [round(v, 3) for v in request_overhead]},
        }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
