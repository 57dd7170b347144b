"""Cost of one cache round trip in one process: a loop of ``cache.get`` (a diagnosis tool, not a figure).

Measures the per-call cost of the configured cache backend (Redis with REDIS_URL), which includes
building or reusing the client object and taking a connection from the pool.

    REDIS_URL=redis://127.0.0.1:6379/14 python -m bench.cache_client [--calls 20000]

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    args = ap.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.test")
    import django

    django.setup()
    from django.core.cache import caches

    cache = caches["default"]
    cache.set("bench:cache_client", 1, 60)
    for _ in range(500):
        cache.get("bench:cache_client")
    started = time.perf_counter()
    for _ in range(args.calls):
        cache.get("bench:cache_client")
    per_call_us = (time.perf_counter() - started) / args.calls * 1e6
    result = {"bench": "cache_client", "backend": f"{type(cache).__module__}.{type(cache).__qualname__}",
              "calls": args.calls, "per_call_us": round(per_call_us, 1), "loadavg": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
