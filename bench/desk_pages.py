"""The desk dashboard's pages with 1,000 accounts and 100,000 order records (target: each page ≤ 300 ms p95).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opitios python -m bench.desk_pages [--samples 20] [--smoke]

Runs alpacasim with ``--accounts N`` (the account page's two broker calls go to it) and a throwaway test
database (``test_<name>``, created, migrated, dropped). Seeds N accounts with two balance snapshots each
(yesterday and now), N × 100 order records over 30 days (outcomes, timings, fills, open orders), fill
events for the measured accounts and the sell bot's managed positions. Each sample is one GET through
Django's full request path (middleware, session auth, view, template), in process: gunicorn and the
socket are not in the figure. ``--smoke``: 50 accounts, 5,000 records, a few samples. Prints JSON.
``--keep-db``: seed into ``test_<name>_deskbench`` once and keep it for the next run (migrations still
apply; it is reseeded when its account count differs); ``--drop-db`` drops that kept database.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alpacasim.accounts import generated_credentials  # noqa: E402
from bench.gateway import pct  # noqa: E402
from tests.helpers.sim import SimServer  # noqa: E402

TARGET_P95_MS = 300.0
RECORDS_PER_ACCOUNT = 100


def seed(n_accounts: int, records_per_account: int) -> list[str]:
    from django.utils import timezone

    from accounts import crypto
    from accounts.balance_cache import snapshots_remember
    from accounts.models import AlpacaAccount, BalanceSnapshot
    from sellbot.models import ManagedPosition
    from trading.models import OrderEvent, OrderRecord

    rng = random.Random(7)
    now = timezone.now()
    accounts = []
    for i in range(1, n_accounts + 1):
        key, secret = generated_credentials(i)
        accounts.append(AlpacaAccount(account_id=f"acct_{i:04d}", name=f"Bench {i}", tier="standard", account_number=f"PA{i:08d}",
                                      api_key_encrypted=crypto.encrypt(key), secret_key_encrypted=crypto.encrypt(secret),
                                      type_source="detected"))
    AlpacaAccount.objects.bulk_create(accounts, batch_size=1000)
    accounts = list(AlpacaAccount.objects.order_by("account_id"))
    snapshots = BalanceSnapshot.objects.bulk_create([
        BalanceSnapshot(account=a, cash=Decimal(50_000 + i), buying_power=Decimal(100_000), equity=Decimal(100_000 + i * d), fetched_at=at)
        for i, a in enumerate(accounts) for d, at in ((1, now - dt.timedelta(days=1, hours=1)), (2, now - dt.timedelta(seconds=20)))
    ], batch_size=5000)
    snapshots_remember(snapshots)  # every snapshot writer keeps the balance check's cache (accounts/balance_cache.py)
    symbols, outcomes = ("AAPL", "MSFT", "SPY", "TSLA", "AAPL261218C00200000"), ("accepted",) * 90 + ("refused",) * 6 + ("rejected",) * 3 + ("failed",)
    batch = []
    for a in accounts:
        for j in range(records_per_account):
            outcome = rng.choice(outcomes)
            total = rng.lognormvariate(2.5, 0.4)
            broker = total * 0.8 if outcome != "refused" else None
            filled = outcome == "accepted" and rng.random() < 0.7
            symbol = rng.choice(symbols)
            batch.append(OrderRecord(
                account=a, account_type="paper", source=rng.choice(("api", "api", "bulk", "sellbot")), client_order_id=f"b-{a.pk}-{j}",
                symbol=symbol, asset_class="us_option" if len(symbol) > 6 else "us_equity", side=rng.choice(("buy", "buy", "sell")),
                order_type=rng.choice(("market", "limit")), time_in_force="day", qty=Decimal(rng.randint(1, 20)), outcome=outcome,
                broker_status=("filled" if filled else rng.choice(("new", "canceled"))) if outcome == "accepted" else "",
                received_at=now - dt.timedelta(seconds=rng.uniform(0, 30 * 86400)), total_ms=total, broker_ms=broker,
                overhead_ms=total - (broker or 0), filled_qty=Decimal(rng.randint(1, 5)) if filled else Decimal(0),
                filled_avg_price=Decimal(f"{rng.uniform(1, 400):.2f}") if filled else None))
            if len(batch) >= 5000:
                OrderRecord.objects.bulk_create(batch)
                batch = []
    OrderRecord.objects.bulk_create(batch)
    measured = [a.account_id for a in accounts[:: max(1, len(accounts) // 5)]][:5]
    events = []
    for a in AlpacaAccount.objects.filter(account_id__in=measured):
        for record in OrderRecord.objects.filter(account=a, filled_qty__gt=0)[:60]:
            events.append(OrderEvent(account=a, record=record, broker_order_id=f"bo-{record.pk}", client_order_id=record.client_order_id,
                                     event="fill", symbol=record.symbol, side=record.side, order_status="filled", qty=record.filled_qty,
                                     price=record.filled_avg_price, order_filled_qty=record.filled_qty, execution_id=f"x-{record.pk}",
                                     broker_at=record.received_at + dt.timedelta(milliseconds=40), received_at=record.received_at,
                                     dedupe_key=f"x-{record.pk}"))
    OrderEvent.objects.bulk_create(events)
    ManagedPosition.objects.bulk_create([
        ManagedPosition(account=a, symbol="AAPL261218C00200000", qty=1, entry_price=Decimal("1.5"), opened_at=now, high_water_mark=Decimal(2))
        for a in accounts[::10]])
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=20, help="timed GETs per page")
    parser.add_argument("--smoke", action="store_true", help="50 accounts, 5,000 records, a few samples")
    parser.add_argument("--keep-db", action="store_true", help="keep the seeded database for the next run (and reuse it)")
    parser.add_argument("--drop-db", action="store_true", help="drop the kept database and exit")
    args = parser.parse_args()
    n_accounts, samples = (50, 4) if args.smoke else (args.accounts, args.samples)

    with tempfile.TemporaryDirectory(prefix="opitios-desk-bench-") as tmp, \
            SimServer(config=None, accounts=n_accounts, rate_limit=False, seed=1) as sim:
        os.environ.update({"ALPACA_PAPER_URL": sim.paper_url, "ALPACA_LIVE_URL": sim.live_url, "ALPACA_DATA_URL": sim.data_url,
                           "OPITIOS_SECRETS": str(Path(tmp) / "secrets.yml")})
        (Path(tmp) / "secrets.yml").write_text("accounts: {}\n")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.test")
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client

        from accounts.models import AlpacaAccount

        old_name = connection.settings_dict["NAME"]
        keep = args.keep_db or args.drop_db
        if keep:  # a name of its own: the test runner's test_<name> is clobbered by any pytest run
            connection.settings_dict.setdefault("TEST", {})["NAME"] = f"test_{Path(str(old_name)).stem}_deskbench"
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=keep)
        try:
            if args.drop_db:
                return
            started = time.perf_counter()
            reused = keep and AlpacaAccount.objects.count() == n_accounts
            if reused:
                ids = list(AlpacaAccount.objects.order_by("account_id").values_list("account_id", flat=True))
                measured = ids[:: max(1, len(ids) // 5)][:5]
            else:
                if keep:
                    connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
                    connection.settings_dict["NAME"] = old_name
                    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
                measured = seed(n_accounts, RECORDS_PER_ACCOUNT)
            seed_s = time.perf_counter() - started
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("ANALYZE")
            client = Client()
            user = get_user_model().objects.filter(username="bench").first()
            client.force_login(user or get_user_model().objects.create_superuser("bench", password="x"))
            pages = {
                "overview": ["/desk/"],
                "overview_sorted": ["/desk/?sort=-equity", "/desk/?sort=-day_pl", "/desk/?sort=-open_orders", "/desk/?sort=-managed"],
                "overview_search_page": ["/desk/?q=acct_05", "/desk/?page=10", "/desk/?q=standard&page=3"],
                "account": [f"/desk/accounts/{account_id}/" for account_id in measured],
                "latency_7d": ["/desk/latency/"],
                "latency_30d": ["/desk/latency/?days=30"],
                "traffic": ["/desk/traffic/"],
                "quotes": ["/desk/quotes/"],
            }
            for urls in pages.values():  # warm-up: templates, the broker pool, the query plans
                for url in urls:
                    assert client.get(url).status_code == 200, url
            result_pages = {}
            for name, urls in pages.items():
                times = []
                for i in range(samples):
                    t0 = time.perf_counter()
                    response = client.get(urls[i % len(urls)])
                    times.append((time.perf_counter() - t0) * 1000)
                    assert response.status_code == 200
                result_pages[name] = {"p50_ms": round(pct(times, 50), 1), "p95_ms": round(pct(times, 95), 1), "samples": len(times)}
            worst = max(result_pages.items(), key=lambda item: item[1]["p95_ms"])
            from trading.models import OrderRecord

            result = {
                "what": "GET of each desk page in process (middleware, session, view, template), "
                        f"{n_accounts} accounts, {OrderRecord.objects.count()} order records, {connection.vendor}",
                "accounts": n_accounts, "order_records": OrderRecord.objects.count(), "database": connection.vendor,
                "seed_s": round(seed_s, 1), "reused_db": reused, "pages": result_pages,
                "worst_page": worst[0], "worst_p95_ms": worst[1]["p95_ms"], "target_p95_ms": TARGET_P95_MS,
                "meets_target": worst[1]["p95_ms"] <= TARGET_P95_MS,
            }
            print(json.dumps(result))
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=args.keep_db)


if __name__ == "__main__":
    main()
