"""Tick-driven exits against sweep-driven ones: from the price move that crosses a stop to the exit order
accepted by alpacasim, the same way for both, in one run.

    python -m bench.tick_exit [--samples 20] [--check-interval 5] [--smoke]

A whole stack (tests/helpers/stack.py: gunicorn, a Celery worker and beat, the trade-updates listener, the ws
process and, with REDIS_URL, the hub process) against its own alpacasim streaming at 50 ticks/s per symbol.
2 x samples opted-in option positions are opened (one symbol each) through the API; the listener makes them
managed and the hub streams their symbols. Then, one position at a time, the bid is moved below the stop
loss and the time is taken from just before that move (the next tick carrying it leaves alpacasim within one
tick period, 20 ms) to the exit's ``responded_at`` (alpacasim accepted the order) in the stack's ledger.

- ``tick`` phase: ``sell_module.tick_eval_interval_ms`` 200 (the default); the sweep runs too, whichever
  sells first is what a desk gets.
- ``sweep`` phase: the same stack with ``tick_eval_interval_ms`` 0 (the hub re-reads it every second): only
  the sweep, every ``check_interval`` (5 s, the default), pricing from the stream's cache.

Target: tick p95 <= 250 ms. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.test")

import django  # noqa: E402

django.setup()

import yaml  # noqa: E402

from bench.gateway import pct  # noqa: E402
from tests.e2e.faultstack import admin, query, secrets_file, stack_env, trader  # noqa: E402
from tests.helpers.sim import SimServer  # noqa: E402
from tests.helpers.stack import Stack  # noqa: E402

TARGET_P95_MS = 250
TICK_RATE = 50
RULES = {"profit_rate": 1.5, "stop_loss_rate": 0.8}


def _symbols(n: int) -> list[str]:
    return [f"AAPL2701{15 + i // 40:02d}C00{200 + i % 40:03d}000" for i in range(n)]


def _at(value) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _wait(what: str, predicate, timeout: float = 120.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)


def _set_sell(path: Path, **values) -> None:
    data = yaml.safe_load(path.read_text())
    data["sell_module"].update(values)
    path.write_text(yaml.safe_dump(data))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a distinct mtime: current_config() re-reads


def _phase(stack: Stack, sim: SimServer, symbols: list[str]) -> tuple[list[float], list[float]]:
    """(move to exit accepted, move to decision) per symbol, in ms."""
    latencies, decided = [], []
    for symbol in symbols:
        moved = time.time()
        sim.set_price(symbol, bid=1.50, ask=1.55)  # -25%: below the 0.8 stop
        rows = _wait(f"the exit of {symbol}", lambda s=symbol: query(
            stack, "SELECT responded_at FROM trading_orderrecord WHERE symbol = %s AND side = 'sell' AND responded_at IS NOT NULL", (s,)))
        latencies.append(round((_at(rows[0][0]) - moved) * 1000, 1))
        first = query(stack, "SELECT MIN(decided_at) FROM sellbot_selldecision WHERE symbol = %s", (symbol,))[0][0]
        decided.append(round((_at(first) - moved) * 1000, 1))
    return latencies, decided


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--check-interval", type=float, default=5.0)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    samples, interval = (3 if args.smoke else args.samples), args.check_interval
    symbols = _symbols(2 * samples)
    processes = ("web", "worker", "ticks", "beat", "listener", "ws", *(("hub",) if os.environ.get("REDIS_URL") else ()))
    with tempfile.TemporaryDirectory(prefix="bench-tick-exit-") as tmp, SimServer(seed=5) as sim:
        root = Path(tmp)
        sim.set_clock(is_open=True)
        sim.control("POST", "/_sim/streams/config", {"tick_rate": TICK_RATE})
        for s in symbols:
            sim.set_price(s, bid=1.95, ask=2.00)
        secrets = secrets_file(root, sell_module={"enabled": True, "check_interval": interval, "strategy_one": RULES,
                                                  "tick_eval_interval_ms": 200})
        stack = Stack(root, processes=processes, env=stack_env(sim, secrets), start_timeout=120)
        stack.start()
        try:
            for i, s in enumerate(symbols):
                status, body, _ = stack.request("POST", "/api/v1/options/order", token=trader(f"account_00{1 + i % 2}"), body={
                    "option_symbol": s, "qty": 1, "side": "buy", "type": "market", "time_in_force": "day", "auto_sell_enabled": True})
                assert status == 201, body
            _wait("the managed positions", lambda: query(stack, "SELECT COUNT(*) FROM sellbot_managedposition")[0][0] == len(symbols), every=0.5)
            _wait("the hub to stream every managed symbol", lambda: stack.get("/api/v1/health/detailed", token=admin())[1]["checks"]
                  ["streams"].get("feeds", {}).get("option:indicative", {}).get("subscribed_symbols") == len(symbols), every=0.5)
            tick, tick_decided = _phase(stack, sim, symbols[:samples])
            _set_sell(secrets, tick_eval_interval_ms=0)
            time.sleep(2.5)  # the hub re-reads the interval every second; the worker at its next task
            sweep, sweep_decided = _phase(stack, sim, symbols[samples:])
            reasons = query(stack, "SELECT detail FROM sellbot_selldecision")
            decisions = query(stack, "SELECT symbol, attempt, reason, outcome, error, detail FROM sellbot_selldecision ORDER BY symbol, attempt")
        finally:
            if os.environ.get("BENCH_KEEP_LOGS"):
                print(stack.diagnostics(20000), file=sys.stderr)
            stack.stop(check=False)
    by_tick = sum(1 for (d,) in reasons if d.startswith("tick: "))
    result = {
        "bench": "tick_exit",
        "samples_per_phase": samples,
        "check_interval_s": interval,
        "tick_rate_per_symbol": TICK_RATE,
        "stack": "postgresql+redis" if os.environ.get("REDIS_URL") else "embedded",
        "tick_ms": {"p50": pct(tick, 50), "p95": pct(tick, 95), "max": max(tick)},
        "sweep_ms": {"p50": pct(sweep, 50), "p95": pct(sweep, 95), "max": max(sweep)},
        "tick_to_decision_ms": {"p50": pct(tick_decided, 50), "p95": pct(tick_decided, 95)},
        "sweep_to_decision_ms": {"p50": pct(sweep_decided, 50), "p95": pct(sweep_decided, 95)},
        "decisions_by_tick": by_tick,
        "decisions": len(decisions),
        "repeated_attempts": [[str(v) for v in row] for row in decisions if row[1] > 1],
        "target_tick_p95_ms": TARGET_P95_MS,
        "ok": pct(tick, 95) <= TARGET_P95_MS,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
