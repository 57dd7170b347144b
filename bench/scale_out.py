"""Scale-out: quote and order throughput with two web processes against one, as a ratio.

One gateway (bench/gateway.py: alpacasim, production settings, raised throttles and budgets) runs gunicorn
with one worker (``WEB_CONCURRENCY=1``); a second gunicorn, the same configuration on another port and its
own metrics directory, shares its database and cache, as a second web host would (docs/deployment.md,
"Scale-out"). wrk drives ``connections`` connections at one web process, then the same number split
half and half across the two at once, alternating for ``rounds`` rounds; the ratio is the median over the
rounds of the two's summed 2xx requests/s over the one's.

On this 2-core machine the webs, wrk and alpacasim share the cores, so the ratio says how much a second
process adds here (the first is already CPU-bound), not what a second host adds.

    python -m bench.scale_out [--duration 3] [--rounds 3] [--connections 16] [--order-connections 8] [--smoke]

Prints one JSON object (the last line of stdout).
"""
from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import gateway_stack  # noqa: E402
from bench.wrk import run_wrk  # noqa: E402
from tests.helpers.sim import free_port  # noqa: E402

# A Lua expression: a fresh client_order_id per request (bench/wrk.py, lua_script). wrk's ``id`` repeats across
# wrk processes started in the same second (math.random is not seeded), so each run adds its own prefix.
ORDER = ('\'{"symbol":"AAPL","qty":"1","side":"buy","type":"market","time_in_force":"day",'
         '"client_order_id":"so-%s-\' .. id .. \'-\' .. n .. \'"}\'')


def second_web(env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    own = {**env, "PROMETHEUS_MULTIPROC_DIR": str(Path(env["OPITIOS_VAR_DIR"]) / "prometheus" / "web2")}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "opitios.wsgi:application", "-c", "opitios/gunicorn.conf.py",
                             "--bind", f"127.0.0.1:{port}"], cwd=Path(__file__).resolve().parent.parent, env=own, stdout=sys.stderr)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/api/v1/health", timeout=5).ok:
                return proc, base
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the second gunicorn did not become healthy")
        time.sleep(0.1)


def throughput(bases: list[str], path: str, *, connections: int, duration: float, **wrk) -> dict:
    """wrk at every base at once, ``connections`` split evenly; requests/s summed."""
    each = max(1, connections // len(bases))

    def one(base: str) -> dict:
        extra = dict(wrk)
        if "body_per_request" in extra:
            extra["body_per_request"] %= secrets.token_hex(4)
        return run_wrk(f"{base}{path}", connections=each, threads=1, duration=duration, **extra)

    with ThreadPoolExecutor(len(bases)) as pool:
        runs = list(pool.map(one, bases))
    ok = [(r["requests"] - (r["non_2xx"] or 0)) / r["duration_s"] if r["duration_s"] else 0 for r in runs]
    return {
        "requests_per_s": round(sum(ok), 1),  # answered 2xx; refusals (e.g. 503 broker_busy) do not count
        "non_2xx": sum(r["non_2xx"] or 0 for r in runs),
        "p95_ms": max(r["latency_ms"].get("p95") or 0 for r in runs),
        "per_process_rps": [round(x, 1) for x in ok],
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="alternating one/two rounds; the ratio is their median")
    ap.add_argument("--connections", type=int, default=16, help="quotes")
    # Orders: 8, twice one web's broker slots (BROKER_ORDER_CONCURRENCY = threads / 2): more is shed as 503 broker_busy
    ap.add_argument("--order-connections", type=int, default=8)
    ap.add_argument("--smoke", action="store_true", help="1 s per run")
    args = ap.parse_args(argv)
    duration, rounds = (1, 1) if args.smoke else (args.duration, args.rounds)
    with gateway_stack(workers=1) as gw:
        gw.sim.set_price("AAPL", 1.0)  # a dollar a share: thousands of market buys stay within the account's cash
        web2, base2 = second_web(gw.env)
        try:
            auth = {"Authorization": f"Bearer {gw.token}"}
            for base in (gw.base_url, base2):  # warm both (connections, the broker pool)
                for _ in range(2 if args.smoke else 10):
                    assert requests.get(f"{base}/api/v1/stocks/AAPL/quote", timeout=10).status_code == 200
            order = {"method": "POST", "headers": {**auth, "Content-Type": "application/json"}, "body_per_request": ORDER}
            rows = {}
            for name, path, extra in (("quote", "/api/v1/stocks/AAPL/quote", {"connections": args.connections}),
                                      ("order", "/api/v1/stocks/order", {**order, "connections": args.order_connections})):
                runs = []
                for _ in range(rounds):  # alternated, so a burst of load from elsewhere on the host hits both sides
                    one = throughput([gw.base_url], path, duration=duration, **extra)
                    two = throughput([gw.base_url, base2], path, duration=duration, **extra)
                    runs.append({"one": one, "two": two, "ratio": round(two["requests_per_s"] / (one["requests_per_s"] or 1), 3)})
                rows[name] = {"ratio": statistics.median(r["ratio"] for r in runs), "rounds": runs}
        finally:
            web2.terminate()
            try:
                web2.wait(30)
            except subprocess.TimeoutExpired:
                web2.kill()
        result = {
            "bench": "scale_out",
            "method": f"wrk -c{args.connections} (orders -c{args.order_connections}) -d{duration:g}s at one gunicorn (WEB_CONCURRENCY=1), then split across two "
                      f"sharing the database and cache, {rounds} alternating rounds; ratio = median of two's summed 2xx req/s / one's",
            **gw.info,
            "quote_ratio": rows["quote"]["ratio"],
            "order_ratio": rows["order"]["ratio"],
            **rows,
        }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
