"""Measure alpacasim's own throughput on one core with wrk.

    python bench/sim_throughput.py [--smoke] [--duration 5] [--connections 32]

Starts alpacasim (rate limit off, no latency) pinned to CPU 0, runs ``wrk -t1 -c32 --latency`` against a
market-data route and a trading route, and prints a JSON dict of requests/s and latency percentiles.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alpacasim.accounts import generated_credentials
from bench.wrk import run_wrk  # noqa: E402
from tests.helpers.sim import SimServer

ROUTES = {
    "stock_quote": "/v2/stocks/quotes/latest?symbols=AAPL",
    "clock": "/paper/v2/clock",
}
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--smoke", action="store_true", help="1 s per route")
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--cpu", type=int, default=0)
    args = p.parse_args()
    if not shutil.which("wrk"):
        print(json.dumps({"error": "wrk not installed (apt-get install -y wrk)"}))
        return 2
    duration = 1 if args.smoke else args.duration
    key, secret = generated_credentials(1)
    server = SimServer(config=None, accounts=1, seed=1, rate_limit=False)
    server.start()
    pinned = False
    try:
        if hasattr(os, "sched_setaffinity"):
            try:
                # pin every thread of the server process to one core
                for tid in os.listdir(f"/proc/{server.proc.pid}/task"):
                    os.sched_setaffinity(int(tid), {args.cpu})
                pinned = True
            except OSError:
                pinned = False
        results: dict = {
            "server_cpus": [args.cpu] if pinned else "unpinned",
            "duration_s": duration,
            "connections": args.connections,
        }
        wrk_cpus = [(args.cpu + 1) % (os.cpu_count() or 1)] if (os.cpu_count() or 1) >= 2 else None
        headers = {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret}
        for name, path in ROUTES.items():
            results[name] = run_wrk(server.base_url + path, headers=headers, connections=args.connections,
                                    threads=1, duration=duration, cpus=wrk_cpus)
    finally:
        server.stop()
    results["min_requests_per_s"] = min(
        r["requests_per_s"] or 0 for n, r in results.items() if n in ROUTES
    )
    results["target_requests_per_s"] = 2000
    results["ok"] = results["min_requests_per_s"] >= 2000
    print(json.dumps(results, indent=2))
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
