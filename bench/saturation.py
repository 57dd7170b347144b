"""Saturation point of the gateway: wrk at rising concurrency against the
market-data route (throttles raised, so the API's own capacity is measured) and against /health.

The saturation point is the highest throughput reached before p99 passes 1 s or any request fails.
The overload test (tests/e2e/test_overload.py) proves the shedding; this records where it starts.

    python -m bench.saturation [--duration 3] [--smoke]

Prints one JSON object (the last line of stdout).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import gateway_stack  # noqa: E402
from bench.wrk import run_wrk  # noqa: E402

CONCURRENCY = (1, 4, 16, 64, 256)
P99_LIMIT_MS = 1000


def ramp(url: str, *, steps: tuple[int, ...], duration: float) -> list[dict]:
    rows = []
    for connections in steps:
        r = run_wrk(url, connections=connections, threads=min(2, connections), duration=duration)
        failed = (r["non_2xx"] or 0) + sum(v for k, v in r["errors"].items() if k != "status")
        rows.append({"connections": connections, "requests_per_s": r["requests_per_s"], "p50_ms": r["latency_ms"].get("p50"),
                     "p99_ms": r["latency_ms"].get("p99"), "failed": failed})
    return rows


def saturation(rows: list[dict]) -> dict:
    healthy = [r for r in rows if not r["failed"] and (r["p99_ms"] or 0) <= P99_LIMIT_MS]
    best = max(healthy, key=lambda r: r["requests_per_s"] or 0, default=None)
    return {"requests_per_s": best["requests_per_s"], "connections": best["connections"]} if best else {}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=3)
    ap.add_argument("--smoke", action="store_true", help="1 s per step, two steps")
    args = ap.parse_args(argv)
    steps, duration = ((1, 8), 1) if args.smoke else (CONCURRENCY, args.duration)
    with gateway_stack() as gw:
        quote = ramp(f"{gw.base_url}/api/v1/stocks/AAPL/quote", steps=steps, duration=duration)
        health = ramp(f"{gw.base_url}/api/v1/health", steps=steps, duration=duration)
        result = {
            "bench": "saturation",
            "method": f"wrk at {', '.join(map(str, steps))} connections, {duration:g} s each; saturated when p99 > {P99_LIMIT_MS} ms or a request fails",
            **gw.info,
            "quote": quote,
            "health": health,
            "quote_saturation": saturation(quote),
            "health_saturation": saturation(health),
        }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
