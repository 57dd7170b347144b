"""Market-data throughput: GET /api/v1/stocks/AAPL/quote through gunicorn at concurrency
32, as a ratio of alpacasim's own throughput on the same route (/v2/stocks/quotes/latest?symbols=AAPL)
measured in the same run on the same machine. An info row: AAPL is not streamed here, so every quote is an
upstream call. The quote's target is the streamed symbol's against `/api/v1/live` (bench.hub_fanout,
docs/operations.md "Benchmarks").

Method: ``wrk -t2 -c32 -d10s --latency`` against each, anonymous (market data is public by
default; the bench secrets raise every throttle, see bench/gateway.py). The gateway runs the
production settings and ``opitios/gunicorn.conf.py``; embedded or PostgreSQL + Redis follows the
environment (DATABASE_URL, REDIS_URL).

    python -m bench.quote_throughput [--duration 10] [--connections 32] [--smoke]

Prints one JSON object (the last line of stdout).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import gateway_stack  # noqa: E402
from bench.wrk import run_wrk  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--workers", type=int, help="WEB_CONCURRENCY for gunicorn (default: the gunicorn.conf.py default)")
    ap.add_argument("--gunicorn-threads", type=int, help="GUNICORN_THREADS (default: the gunicorn.conf.py default)")
    ap.add_argument("--smoke", action="store_true", help="2 s per target")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    if not shutil.which("wrk"):
        result = {"bench": "quote_throughput", "error": "wrk not installed (apt-get install -y wrk)"}
        print(json.dumps(result))
        return result
    duration = 2 if args.smoke else args.duration
    with gateway_stack(workers=args.workers, threads=args.gunicorn_threads) as gw:
        gateway_url = f"{gw.base_url}/api/v1/stocks/AAPL/quote"
        sim_url = f"{gw.sim.data_url}/v2/stocks/quotes/latest?symbols=AAPL"
        acct = gw.config["accounts"]["account_001"]
        sim_headers = {"APCA-API-KEY-ID": acct["api_key"], "APCA-API-SECRET-KEY": acct["secret_key"]}
        for _ in range(20):  # warm both (connections, the broker pool)
            assert requests.get(gateway_url, timeout=10).status_code == 200
            assert requests.get(sim_url, headers=sim_headers, timeout=10).status_code == 200
        common = {"duration": duration, "connections": args.connections, "threads": args.threads}
        sim = run_wrk(sim_url, headers=sim_headers, **common)
        gateway = run_wrk(gateway_url, headers={}, **common)
        ratio = round((gateway["requests_per_s"] or 0) / (sim["requests_per_s"] or 1), 3)
        result = {
            "bench": "quote_throughput",
            "method": f"wrk -t{args.threads} -c{args.connections} -d{duration}s --latency, alpacasim first, then the gateway",
            **gw.info,
            "gateway_rps": gateway["requests_per_s"],
            "sim_rps": sim["requests_per_s"],
            "ratio": ratio,
            "gateway_latency_ms": gateway["latency_ms"],
            "sim_latency_ms": sim["latency_ms"],
            "gateway": gateway,
            "sim": sim,
            "ok": not gateway["non_2xx"],
        }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
