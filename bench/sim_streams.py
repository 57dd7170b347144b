"""Measure alpacasim's market-data stream on one core: sustained messages/s, and tick -> client latency.

    python -m bench.sim_streams [--smoke] [--duration 5] [--cpu 0]

Starts alpacasim (server pinned to one core) and one msgpack client on another core, as alpaca-py's
StockDataStream speaks it. Two phases: saturation (100,000 ticks/s offered, more than one core can send:
what arrives per second is the sustained rate), then 1,000 messages/s offered, where the p50/p99 from a tick's
timestamp to its decoding by the client are taken. Prints a JSON dict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgpack  # noqa: E402
import websockets  # noqa: E402

from alpacasim.accounts import generated_credentials  # noqa: E402
from tests.helpers.sim import SimServer  # noqa: E402

TARGET_MSGS_PER_S = 1000


def _symbols(n: int) -> list[str]:
    return [f"S{i:03d}" for i in range(n)]


async def _measure(url: str, key: str, secret: str, symbols: list[str], seconds: float) -> tuple[int, float, list[float]]:
    """(messages, elapsed seconds, latencies in ms) over ``seconds`` after the first tick."""
    latencies: list[float] = []
    count = 0
    async with websockets.connect(url, additional_headers={"Content-Type": "application/msgpack"}, max_size=None) as ws:
        await ws.recv()
        await ws.send(msgpack.packb({"action": "auth", "key": key, "secret": secret}))
        await ws.recv()
        await ws.send(msgpack.packb({"action": "subscribe", "quotes": symbols}))
        await ws.recv()  # the echo
        start = None
        while True:
            frame = await asyncio.wait_for(ws.recv(), 10)
            now = time.time()
            msgs = msgpack.unpackb(frame, timestamp=1)  # timestamps as float epoch seconds
            if start is None:
                start = now
            count += len(msgs)
            latencies.extend((now - m["t"]) * 1000 for m in msgs)
            if now - start >= seconds:
                return count, now - start, latencies


def _p(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100)[q - 1], 2) if len(values) >= 2 else 0.0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--smoke", action="store_true", help="1 s per phase")
    p.add_argument("--duration", type=float, default=5)
    p.add_argument("--cpu", type=int, default=0)
    args = p.parse_args()
    duration = 1.0 if args.smoke else args.duration
    key, secret = generated_credentials(1)
    server = SimServer(config=None, accounts=1, seed=1, rate_limit=False).start()
    pinned = False
    try:
        if hasattr(os, "sched_setaffinity"):
            try:
                for tid in os.listdir(f"/proc/{server.proc.pid}/task"):
                    os.sched_setaffinity(int(tid), {args.cpu})
                if (os.cpu_count() or 1) >= 2:
                    os.sched_setaffinity(0, {(args.cpu + 1) % os.cpu_count()})
                pinned = True
            except OSError:
                pinned = False
        url = server.base_url.replace("http", "ws") + "/v2/iex"
        symbols = _symbols(100)
        # saturation: 100 symbols x 1,000/s = 100,000 offered
        server.control("POST", "/_sim/streams/config", {"tick_rate": 1000})
        sat_n, sat_s, _ = asyncio.run(_measure(url, key, secret, symbols, duration))
        # latency at 1,000 offered: 100 symbols x 10/s
        server.control("POST", "/_sim/streams/config", {"tick_rate": 10})
        lat_n, lat_s, lat = asyncio.run(_measure(url, key, secret, symbols, duration))
    finally:
        server.stop()
    sustained = round(sat_n / sat_s, 1)
    results = {
        "server_cpus": [args.cpu] if pinned else "unpinned",
        "duration_s": duration,
        "sustained_msgs_per_s": sustained,
        "offered_at_saturation_msgs_per_s": 100_000,
        "latency_phase": {"offered_msgs_per_s": 1000, "received_msgs_per_s": round(lat_n / lat_s, 1),
                          "p50_ms": _p(lat, 50), "p99_ms": _p(lat, 99)},
        "target_msgs_per_s": TARGET_MSGS_PER_S,
        "ok": sustained >= TARGET_MSGS_PER_S,
    }
    print(json.dumps(results, indent=2))
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
