"""CPU of the broker call alone: ``AlpacaAccountBroker.submit_order`` (alpaca-py on the account's
``TimeoutSession``) against alpacasim, in this process, without the database or the request pipeline.
A diagnosis tool for the seam (docs/performance.md, "The broker call goes straight to the kept-alive
adapter"), not a target figure; alternate runs of the old and the new commit.

    python -m bench.broker_call [--calls 500] [--cprofile]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--cprofile", action="store_true", help="also a cProfile table of the calls (CPU time)")
    args = ap.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.test")
    import django

    django.setup()
    from accounts.broker import OrderRequest
    from accounts.broker.adapter import AlpacaAccountBroker, ClientSpec
    from tests.helpers.sim import SimServer

    with SimServer(seed=1, rate_limit=False) as sim:
        from django.conf import settings

        settings.ALPACA_PAPER_URL = sim.paper_url
        broker = AlpacaAccountBroker(ClientSpec(pk=1, account_id="bench", paper=True, rate_limit_per_minute=1_000_000, fingerprint=()),
                                     api_key="PKDEMO0000000000001", secret_key="demo-secret-0000000001", max_connections=2)

        def order():
            # a limit far below the market: the account's buying power is never used up
            broker.submit_order(OrderRequest(symbol="AAPL", side="buy", type="limit", time_in_force="day",
                                             client_order_id=uuid.uuid4().hex, qty=Decimal("1"), limit_price=Decimal("1")))

        for _ in range(30):
            order()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(args.calls):
            order()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        print(f"submit_order: {cpu / args.calls * 1000:.3f} ms CPU, {wall / args.calls * 1000:.3f} ms wall per call "
              f"({args.calls} calls, load {os.getloadavg()[0]:.1f})")
        if args.cprofile:
            import cProfile
            import pstats

            prof = cProfile.Profile(time.process_time)
            prof.enable()
            for _ in range(args.calls):
                order()
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        broker.close()


if __name__ == "__main__":
    main()
