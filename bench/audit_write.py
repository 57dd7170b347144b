"""Time one order's ledger write: the outcome of a pending ``trading.OrderRecord`` and its
``AuditEvent``, committed together by ``trading.services.order_outcome_write`` (target: ≤ 1 ms median),
and the claim that created the pending record (``opitios.db.insert``). Wall and CPU (``process_time``)
per statement, and the CPU of the PostgreSQL backend serving them (/proc: a local server); with
``DB_PREPARED_STATEMENTS=0`` they run unprepared (client-side binding).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opitios python -m bench.audit_write [--n 2000] [--smoke]

Runs in a throwaway test database (``test_<name>``, created, migrated and dropped), so no real ledger
is touched. The pending rows are created first (as the API does before it calls the broker); each
sample is then one committed transaction: the record's UPDATE and the chain append. The outcome is
``rejected`` (the broker said no), so no balance refresh is enqueued: the figure is the database
write alone. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import cpu_seconds, pct  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="transactions to time")
    parser.add_argument("--smoke", action="store_true", help="a few transactions, to check the script works")
    args = parser.parse_args()
    n, warmup = (20, 5) if args.smoke else (args.n, 200)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.test")
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from accounts.models import AlpacaAccount
    from audit.chain import verify_chain
    from opitios.db import insert, prepares
    from trading.models import OrderRecord, Outcome
    from trading.services import order_outcome_write

    if connection.vendor != "postgresql":
        print(json.dumps({"error": "set DATABASE_URL to a PostgreSQL database; this figure is for PostgreSQL"}))
        sys.exit(2)
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        account = AlpacaAccount.objects.create(account_id="bench_001", api_key_encrypted="x", secret_key_encrypted="x")

        claims: list[tuple[float, float]] = []
        outcomes_cpu: list[float] = []

        def pending(i: int) -> OrderRecord:
            record = OrderRecord(
                account=account, account_type="paper", source="api", user_id="42", client_order_id=f"bench-{i}", symbol="AAPL",
                asset_class="us_equity", side="buy", order_type="market", time_in_force="day", qty=1, received_at=timezone.now())
            started, cpu = time.perf_counter(), time.process_time()
            insert(record)
            claims.append(((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000))
            return record

        def one(record: OrderRecord) -> float:
            now = timezone.now()
            record.submitted_at = record.responded_at = record.completed_at = now
            record.outcome, record.http_status, record.broker_status = Outcome.REJECTED, 422, ""
            record.error_code, record.error_message = "broker_rejected", "insufficient buying power"
            record.total_ms, record.broker_ms, record.overhead_ms = 12.5, 11.0, 1.5
            record.response = {"error": {"code": "broker_rejected", "message": "insufficient buying power",
                                         "details": {"client_order_id": record.client_order_id, "timing": {"total_ms": 12.5}}}}
            data = {"client_order_id": record.client_order_id, "order": {"symbol": "AAPL", "side": "buy", "qty": "1", "type": "market"},
                    "outcome": Outcome.REJECTED, "http_status": 422, "broker_order_id": None,
                    "error": {"code": "broker_rejected", "message": "insufficient buying power"}, "checks": {},
                    "timing": {"total_ms": 12.5, "broker_ms": 11.0, "overhead_ms": 1.5}, "source": "api", "account_type": "paper"}
            started, cpu = time.perf_counter(), time.process_time()
            order_outcome_write(record, account=account, check=None, outcome=Outcome.REJECTED, audit_data=data, actor_type="user")
            outcomes_cpu.append((time.process_time() - cpu) * 1000)
            return (time.perf_counter() - started) * 1000

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        records = [pending(i) for i in range(warmup)]
        backend_cpu = cpu_seconds(backend)
        records += [pending(i) for i in range(warmup, warmup + n)]
        claim_backend_cpu = cpu_seconds(backend) - backend_cpu
        for record in records[:warmup]:
            one(record)
        outcomes_cpu.clear()
        backend_cpu = cpu_seconds(backend)
        samples = [one(record) for record in records[warmup:]]
        outcome_backend_cpu = cpu_seconds(backend) - backend_cpu
        claim_wall, claim_cpu = [w for w, _ in claims[warmup:]], [c for _, c in claims[warmup:]]
        verdict = verify_chain()
        result = {
            "what": "trading.services.order_outcome_write: OrderRecord outcome UPDATE + AuditEvent append, one committed transaction (PostgreSQL)",
            "n": n,
            "median_ms": round(statistics.median(samples), 3),
            "p95_ms": round(pct(samples, 95), 3),
            "cpu_ms": round(statistics.fmean(outcomes_cpu), 3),
            "postgres_cpu_ms": round(outcome_backend_cpu * 1000 / n, 3),
            "claim_median_ms": round(statistics.median(claim_wall), 3),
            "claim_p95_ms": round(pct(claim_wall, 95), 3),
            "claim_cpu_ms": round(statistics.fmean(claim_cpu), 3),
            "claim_postgres_cpu_ms": round(claim_backend_cpu * 1000 / n, 3),
            "prepared": prepares(connection),
            "target_median_ms": 1.0,
            "chain_ok": verdict.ok,
            "events": verdict.count,
        }
        result["meets_target"] = result["median_ms"] <= 1.0
        print(json.dumps(result))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
