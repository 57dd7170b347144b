"""Profile the stock-order path inside one process (a diagnosis tool, not a target figure).

Starts the bench gateway (bench/gateway.py, for alpacasim, the database and the accounts), then
runs POST /api/v1/stocks/order through Django's test client in this process with the same
production settings, under pyinstrument; prints the queries and cache calls of one order and
the profile as text (``--html`` also writes the HTML view).

    python -m bench.profile_order [--orders 300] [--html profile.html] [--cprofile [--cpu]]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import gateway_stack  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--html")
    ap.add_argument("--cprofile", action="store_true", help="also a flat cProfile table (self and cumulative time)")
    ap.add_argument("--cpu", action="store_true",
                    help="the cProfile table counts CPU time (time.process_time), not wall time: waits on the database, "
                         "Redis and alpacasim drop out, so a loaded machine distorts it less")
    args = ap.parse_args(argv)
    with gateway_stack(workers=1, threads=1) as gw:
        os.environ.update(gw.env)
        import django

        django.setup()
        from django.core.cache import caches
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext
        from pyinstrument import Profiler

        client = Client(HTTP_AUTHORIZATION=f"Bearer {gw.token}")
        body = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}

        def order():
            r = client.post("/api/v1/stocks/order", body, content_type="application/json")
            assert r.status_code == 201, r.content
            return r

        for _ in range(30):
            order()

        cache = caches["default"]
        calls = []
        originals = {}
        for name in ("get", "set", "add", "incr", "get_many", "set_many", "delete"):
            fn = getattr(cache, name)
            originals[name] = fn
            setattr(cache, name, lambda *a, _n=name, _f=fn, **k: (calls.append(_n), _f(*a, **k))[1])
        with CaptureQueriesContext(connection) as queries:
            order()
        for name, fn in originals.items():
            setattr(cache, name, fn)
        print(f"--- one order: {len(queries)} queries, cache calls {calls}", file=sys.stderr)
        for q in queries.captured_queries:
            print(f"  {q['time']}s {q['sql'][:160]}", file=sys.stderr)

        t0 = time.perf_counter()
        for _ in range(args.orders):
            order()
        plain = (time.perf_counter() - t0) / args.orders * 1000
        print(f"--- {plain:.2f} ms per order through the test client, unprofiled", file=sys.stderr)
        backend = None
        if connection.vendor == "postgresql":  # a local server: its backend's CPU from /proc
            from bench.gateway import cpu_seconds

            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend = cursor.fetchone()[0]
            backend_cpu = cpu_seconds(backend)
        cpu0 = time.process_time()
        for _ in range(args.orders):
            order()
        print(f"--- {(time.process_time() - cpu0) / args.orders * 1000:.2f} ms of this process's CPU per order, unprofiled "
              "(the test client's share included)", file=sys.stderr)
        if backend is not None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid(), (SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql)")
                same, prepared = cursor.fetchone()
            print(f"--- {(cpu_seconds(backend) - backend_cpu) / args.orders * 1000:.2f} ms of the PostgreSQL backend's CPU per order"
                  f"{'' if same == backend else ' (its connection was replaced meanwhile: not comparable)'}, "
                  f"{prepared} statements prepared on its connection", file=sys.stderr)

        profiler = Profiler(interval=0.0002)
        t0 = time.perf_counter()
        profiler.start()
        for _ in range(args.orders):
            order()
        profiler.stop()
        elapsed = time.perf_counter() - t0
        print(f"--- {args.orders} orders in {elapsed:.2f}s: {elapsed / args.orders * 1000:.2f} ms per order (profiled)", file=sys.stderr)
        print(profiler.output_text(unicode=True, color=False, show_all=bool(os.environ.get("PROFILE_ALL"))), file=sys.stderr)
        if args.html:
            Path(args.html).write_text(profiler.output_html())
        if args.cprofile:
            import cProfile
            import pstats

            prof = cProfile.Profile(time.process_time) if args.cpu else cProfile.Profile()
            prof.enable()
            for _ in range(args.orders):
                order()
            prof.disable()
            stats = pstats.Stats(prof, stream=sys.stderr)
            stats.sort_stats("tottime").print_stats(35)
            stats.sort_stats("cumulative").print_stats(90)


if __name__ == "__main__":
    main()
