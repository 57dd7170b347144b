"""Profile the REST quote of a streamed symbol beside /live, inside one process (a diagnosis tool, not a target figure).

Starts the bench gateway (bench/gateway.py: alpacasim, the database, the accounts and, with REDIS_URL, the hub
streaming AAPL), then calls the WSGI application in this process with a bare environ (what gunicorn hands it,
without the HTTP parsing) for GET /api/v1/stocks/AAPL/quote and GET /api/v1/live, anonymous as
``bench.hub_fanout``'s wrk is. Prints the CPU per request of each (``time.process_time``, rounds alternating
between the two) and, with ``--cprofile``, a cProfile table of each on the CPU clock.

    python -m bench.profile_quote [--requests 2000] [--rounds 4] [--cprofile [--top 30] [--dump PREFIX]]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import gateway_stack  # noqa: E402

SYMBOL = "AAPL"
QUOTE = f"/api/v1/stocks/{SYMBOL}/quote"
LIVE = "/api/v1/live"


def _environ(path: str) -> dict:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8090", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
        "HTTP_USER_AGENT": "wrk", "HTTP_ACCEPT": "*/*", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000, help="requests per route per round")
    ap.add_argument("--rounds", type=int, default=4, help="rounds, each /live then the quote")
    ap.add_argument("--cprofile", action="store_true", help="then a cProfile table of each route on the CPU clock")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--dump", help="also write each route's cProfile stats to DUMP.live.prof and DUMP.quote.prof")
    args = ap.parse_args(argv)
    companions = ("hub",) if os.environ.get("REDIS_URL") else ()
    with gateway_stack(workers=1, threads=1, companions=companions, sections={"market_data": {"default_symbols": [SYMBOL]}}) as gw:
        os.environ.update(gw.env)
        import django

        django.setup()
        from django.core.wsgi import get_wsgi_application

        app = get_wsgi_application()
        status: list[str] = []

        def start_response(s, headers, exc_info=None):
            status.append(s)

        def call(path: str) -> bytes:
            body = b"".join(app(_environ(path), start_response))
            assert status.pop().startswith("200"), body
            return body

        if not companions:  # embedded defaults: no hub process here; the value is put in the cache as the hub would
            from opitios import lastvalue

            def put():
                lastvalue.put(lastvalue.key("q", SYMBOL), {"bid": 190.12, "ask": 190.14, "bid_size": 3, "ask_size": 5,
                                                           "timestamp": "2026-01-02T15:00:00.123456Z", "received_at": time.time()})
        else:
            gw.sim.control("POST", "/_sim/streams/config", {"tick_rate": 10})

            def put():
                pass

        deadline = time.monotonic() + 60
        while True:
            put()
            first = json.loads(call(QUOTE))
            if first.get("source") == "stream":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no streamed quote: {first}")
            time.sleep(0.2)
        for _ in range(200):
            call(QUOTE)
            call(LIVE)

        def cpu_per_request(path: str) -> float:
            put()
            t0 = time.process_time()
            for _ in range(args.requests):
                call(path)
            return (time.process_time() - t0) / args.requests * 1000

        rounds = []
        for _ in range(args.rounds):
            rounds.append({"live_ms": round(cpu_per_request(LIVE), 4), "quote_ms": round(cpu_per_request(QUOTE), 4)})
        result = {"bench": "profile_quote", **gw.info, "requests_per_round": args.requests, "first_answer": first,
                  "cpu_ms_per_request": rounds, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]}
        if args.cprofile:
            import cProfile
            import pstats

            for name, path in (("live", LIVE), ("quote", QUOTE)):
                put()
                prof = cProfile.Profile(time.process_time)
                prof.enable()
                for _ in range(args.requests):
                    call(path)
                prof.disable()
                if args.dump:
                    prof.dump_stats(f"{args.dump}.{name}.prof")
                print(f"--- {path}: cProfile on the CPU clock, {args.requests} requests", file=sys.stderr)
                stats = pstats.Stats(prof, stream=sys.stderr)
                stats.sort_stats("cumulative").print_stats(args.top)
                stats.sort_stats("tottime").print_stats(args.top)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
