"""Order lifecycle figures: fill to ledger (alpacasim's event timestamp to the committed ``OrderEvent``),
and the listener's memory per connected account.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opitios python -m bench.lifecycle [--accounts 200] [--orders 300] [--rate 50] [--no-saturated] [--smoke]

Runs in a throwaway test database (``test_<name>``, created, migrated and dropped), against its own alpacasim
(clock forced open). The listener runs in this process, as ``listen_trade_updates`` runs it; market orders
are sent straight to alpacasim, one after the other across the accounts, by a separate process (the load
generator must not share the listener's interpreter lock: ``listen_trade_updates`` runs alone in its process),
in two phases against the same listener: paced at ``--rate`` orders (so fills) per second, the headline figure
at a stated rate (``RATE``), then as fast as alpacasim takes them (``saturated``: mostly queueing, reported
with the rate it reached; ``--rate 0`` runs only that). ``submit_rate_per_s`` is the rate achieved; the
``batches`` figures are the writer's (events per ledger transaction, its wall and thread CPU time), so a
latency can be split into queueing and work. A fill's latency is taken when the
listener's batch holding it has committed (``handling.updates_handle`` returned), from the broker's
``timestamp`` of the event.
Memory per account: this process's RSS once every stream is connected and reconciled, less its RSS before
the listener started, divided by the accounts. Prints JSON.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import pct  # noqa: E402

# The headline phase's fill rate: 50 fills/s across the accounts (a desk of 1,000 accounts each filling once every
# 20 s); the saturated phase (orders back to back, mostly queueing) is reported beside it with the rate it reached.
RATE = 50.0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _submit(paper_url: str, n_accounts: int, n_orders: int, rate: float, took, tag: str = "bench") -> None:
    """The order flow, in its own process: alpacasim's REST order route, as alpaca-py calls it; at ``rate``
    orders per second on a fixed schedule (0: back to back)."""
    import httpx

    from alpacasim.accounts import generated_credentials

    start = time.monotonic()
    with httpx.Client(base_url=paper_url, timeout=30) as client:
        for i in range(n_orders):
            if rate > 0:
                time.sleep(max(0.0, start + i / rate - time.monotonic()))
            key, secret = generated_credentials(1 + i % n_accounts)
            client.post("/v2/orders", headers={"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret}, json={
                "symbol": "AAPL", "side": "buy", "type": "market", "time_in_force": "day", "qty": "1",
                "client_order_id": f"{tag}-{i}"}).raise_for_status()
    took.value = time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--rate", type=float, default=RATE, help=f"orders per second of the headline phase (default {RATE:g}; 0: as fast as alpacasim takes them)")
    parser.add_argument("--no-saturated", action="store_true", help="skip the second phase (orders as fast as alpacasim takes them)")
    parser.add_argument("--profile", metavar="PREFIX", help="cProfile (CPU clock) the listener's event loop and its ledger writes into PREFIX.loop, PREFIX.ledger")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    n_accounts, n_orders = (5, 10) if args.smoke else (args.accounts, args.orders)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.test")
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection

    from accounts import broker as broker_seam
    from accounts import crypto
    from accounts.broker import broker_for
    from accounts.models import AlpacaAccount
    from alpacasim.accounts import generated_credentials
    from lifecycle import handling, listener
    from opitios.gc_freeze import freeze_loaded_application
    from tests.helpers.sim import SimServer

    if connection.vendor != "postgresql":
        print(json.dumps({"error": "set DATABASE_URL to a PostgreSQL database; the listener writes from several threads"}))
        sys.exit(2)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    latencies: list[float] = []
    delivery: list[float] = []
    batches: list[tuple[int, float, float, int, float]] = []  # (events, wall ms, thread CPU ms, statements, ms in them)
    original = handling.updates_handle

    profiles = {name: cProfile.Profile(time.thread_time) for name in ("loop", "ledger")} if args.profile else {}

    def timed(groups):
        statements = [0, 0.0]

        def counted(execute, sql, params, many, context):
            start = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                statements[0] += 1
                statements[1] += time.perf_counter() - start

        wall, cpu = time.perf_counter(), time.thread_time()
        if profiles:
            profiles["ledger"].enable()
        try:
            with connection.execute_wrapper(counted):
                outcomes = original(groups)
        finally:
            if profiles:
                profiles["ledger"].disable()
        done = time.time()  # the batch has committed (and the sell bot's side of its fills run)
        batches.append((sum(len(u) for _, u in groups), (time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000,
                        statements[0], statements[1] * 1000))
        for (_, updates), error in zip(groups, outcomes, strict=True):
            for update in updates:
                if update.event == "fill" and error is None:
                    latencies.append((done - update.timestamp.timestamp()) * 1000)
                    delivery.append((update.received_at - update.timestamp).total_seconds() * 1000)
        return outcomes

    listener.updates_handle = timed
    try:
        with SimServer(config=None, accounts=n_accounts, seed=11, rate_limit=False, extra_args=["--clock", "open"]) as sim:
            settings.ALPACA_PAPER_URL, settings.ALPACA_LIVE_URL, settings.ALPACA_DATA_URL = sim.paper_url, sim.live_url, sim.data_url
            broker_seam.reset_pool()
            AlpacaAccount.objects.bulk_create([
                AlpacaAccount(account_id=f"bench_{i:04d}", name=f"bench_{i:04d}", paper_trading=True, account_type="paper",
                              type_source="detected", api_key_encrypted=crypto.encrypt(k), secret_key_encrypted=crypto.encrypt(s))
                for i, (k, s) in ((i, generated_credentials(i)) for i in range(1, n_accounts + 1))
            ])
            accounts = list(AlpacaAccount.objects.order_by("pk"))
            for account in accounts:
                broker_for(account)  # the REST pool is built before the baseline: it is not the listener's
            cache.delete(listener.shard_key(0))
            freeze_loaded_application()  # as listen_trade_updates does before it listens
            before = _rss_mb()
            box: dict = {}

            def run():
                async def go():
                    box["loop"], box["listener"] = asyncio.get_running_loop(), listener.Listener(poll_seconds=0.5)
                    await box["listener"].run()

                if profiles:
                    profiles["loop"].enable()
                try:
                    asyncio.run(go())
                finally:
                    if profiles:
                        profiles["loop"].disable()

            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            started = time.monotonic()
            while (cache.get(listener.shard_key(0)) or {}).get("connected") != n_accounts:
                if time.monotonic() - started > 120:
                    raise SystemExit("streams did not connect within 120 s")
                time.sleep(0.2)
            connect_s = time.monotonic() - started
            per_account_kb = (_rss_mb() - before) * 1024 / n_accounts
            spawn = multiprocessing.get_context("spawn")

            def phase(rate: float, tag: str) -> dict:
                latencies.clear()
                delivery.clear()
                batches.clear()
                cpu_before = time.process_time()
                took = spawn.Value("d", 0.0)
                submitter = spawn.Process(target=_submit, args=(sim.paper_url, n_accounts, n_orders, rate, took, tag))
                submitter.start()
                submitter.join(timeout=300)
                submit_s = took.value
                deadline = time.monotonic() + 60
                while len(latencies) < n_orders and time.monotonic() < deadline:
                    time.sleep(0.05)
                return _phase_result(rate, n_orders, submit_s, latencies, delivery, batches,
                                     (time.process_time() - cpu_before) * 1000)

            headline = phase(args.rate, "bench")
            saturated = None if args.no_saturated or not args.rate else phase(0.0, "burst")
            box["loop"].call_soon_threadsafe(box["listener"].stop)
            thread.join(timeout=30)
            broker_seam.reset_pool()
    finally:
        listener.updates_handle = original
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
    for name, profile in profiles.items():
        profile.dump_stats(f"{args.profile}.{name}")
    print(json.dumps({
        "accounts": n_accounts, "connect_all_s": round(connect_s, 2), "memory_per_account_kb": round(per_account_kb, 1),
        **headline, "saturated": saturated,
    }))


def _phase_result(rate, n_orders, submit_s, latencies, delivery, batches, listener_cpu_ms) -> dict:
    return {
        "orders": n_orders, "rate_asked_per_s": rate or None,
        "submit_rate_per_s": round(n_orders / submit_s, 1) if submit_s > 0 else None,
        "fills_recorded": len(latencies),
        "fill_to_ledger_ms": {"p50": pct(latencies, 50), "p95": pct(latencies, 95), "p99": pct(latencies, 99)},
        "event_to_receive_ms": {"p50": pct(delivery, 50), "p99": pct(delivery, 99)},
        "batches": {"n": len(batches), "events_p50": pct([b[0] for b in batches], 50), "events_max": max((b[0] for b in batches), default=0),
                    "wall_ms_p50": pct([b[1] for b in batches], 50), "wall_ms_p95": pct([b[1] for b in batches], 95),
                    "cpu_ms_per_event": round(sum(b[2] for b in batches) / max(1, sum(b[0] for b in batches)), 3),
                    "statements_p50": pct([b[3] for b in batches], 50), "statement_ms_p50": pct([b[4] for b in batches], 50)},
        "listener_process_cpu_ms_per_fill": round(listener_cpu_ms / max(1, len(latencies)), 2),
    }


if __name__ == "__main__":
    main()
