"""Gateway overhead of a stock order: POST /api/v1/stocks/order through gunicorn (JWT,
throttle with raised limits, balance check with default settings, OrderRecord, audit, log) versus
the same order sent by alpaca-py straight to alpacasim, in one run, alternating the two.

Method: a sequential Python loop (requests / alpaca-py on keep-alive sessions) timing each request
with perf_counter; percentiles over the measured requests after a warm-up. The overhead is the
difference of the two percentiles (the target's definition); ``paired_overhead_ms`` also gives the
percentiles of the per-pair differences. The gateway runs with the production settings and
``opitios/gunicorn.conf.py`` (see bench/gateway.py); embedded or PostgreSQL + Redis follows the
environment (DATABASE_URL, REDIS_URL).

    python -m bench.order_overhead [--orders 300] [--smoke] [--json out.json]

Prints one JSON object (the last line of stdout).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import gateway_stack, pct  # noqa: E402

TARGET = {"p50": 5, "p95": 10}


def summary(values: list[float]) -> dict:
    return {"p50": round(pct(values, 50), 3), "p95": round(pct(values, 95), 3), "p99": round(pct(values, 99), 3),
            "mean": round(statistics.fmean(values), 3), "n": len(values)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--workers", type=int, help="WEB_CONCURRENCY for gunicorn (default: the gunicorn.conf.py default)")
    ap.add_argument("--threads", type=int, help="GUNICORN_THREADS (default: the gunicorn.conf.py default)")
    ap.add_argument("--smoke", action="store_true", help="a quick run (20 orders) that proves the bench works")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    if args.smoke:
        args.orders, args.warmup = 20, 5

    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest

    with gateway_stack(workers=args.workers, threads=args.threads) as gw:
        acct = gw.config["accounts"]["account_001"]
        direct = TradingClient(acct["api_key"], acct["secret_key"], paper=True, url_override=gw.sim.paper_url)
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {gw.token}"
        body = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}

        api_ms, direct_ms, server_overhead = [], [], []
        for i in range(args.warmup + args.orders):
            t0 = time.perf_counter()
            r = api.post(f"{gw.base_url}/api/v1/stocks/order", json=body, timeout=10)
            t1 = time.perf_counter()
            if r.status_code != 201:
                raise SystemExit(f"order {i} answered {r.status_code}: {r.text[:500]}")
            direct.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                                                   client_order_id=f"direct-{i}-{time.time_ns()}"))
            t2 = time.perf_counter()
            if i >= args.warmup:
                api_ms.append((t1 - t0) * 1000)
                direct_ms.append((t2 - t1) * 1000)
                server_overhead.append(r.json()["timing"]["overhead_ms"])
        api_s, direct_s = summary(api_ms), summary(direct_ms)
        overhead = {k: round(api_s[k] - direct_s[k], 3) for k in ("p50", "p95", "p99")}
        paired = [a - d for a, d in zip(api_ms, direct_ms, strict=True)]
        result = {
            "bench": "order_overhead",
            "method": "sequential Python loop, perf_counter per request, API and direct alternating, keep-alive sessions",
            **gw.info,
            "orders": args.orders,
            "warmup": args.warmup,
            "api_ms": api_s,
            "direct_ms": direct_s,
            "overhead_ms": overhead,
            "paired_overhead_ms": summary(paired),
            "server_reported_overhead_ms": summary(server_overhead),
            "target": TARGET,
            "ok": overhead["p50"] <= TARGET["p50"] and overhead["p95"] <= TARGET["p95"],
            "samples": {"api_ms": [round(v, 3) for v in api_ms], "direct_ms": [round(v, 3) for v in direct_ms],
                        "server_overhead_ms": server_overhead},
        }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
