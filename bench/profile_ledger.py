"""The trade-updates listener's ledger batch per event (a diagnosis tool, not a target figure).

For ``--orders`` pending records of the database's first account (a gateway order's record before its
outcome is written), writes a ``new`` batch and then a ``fill`` batch of one event each, as the listener
writes them (``trading.ledger.trade_updates_record``), then for as many others one batch of both (``new+fill``:
a market order's two events often share a batch, docs/performance.md), and prints per batch: this process's CPU, the
PostgreSQL backend's CPU (from /proc: a local server), the wall time and the statements of one batch.
Run it against a database a bench has filled (``bench.order_overhead`` or ``bench.lifecycle``), from each
worktree to compare commits (docs/performance.md, "The listener's batch").

    DATABASE_URL=postgres://... python -m bench.profile_ledger [--orders 400]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import cpu_seconds  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=400)
    args = ap.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.test")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.broker.contract import TradeUpdate
    from accounts.broker.convert import order_from_json
    from accounts.models import AlpacaAccount
    from trading import ledger
    from trading.models import OrderRecord

    account = AlpacaAccount.objects.order_by("pk").first()
    if account is None or connection.vendor != "postgresql":
        sys.exit("needs a PostgreSQL database with an account (run bench.order_overhead or bench.lifecycle first)")
    now = datetime.now(UTC)
    records = []
    for _ in range(2 * (args.orders + 10)):
        record = OrderRecord(account=account, account_type=account.account_type or "", source="api", user_id="bench", symbol="AAPL",
                             asset_class="us_equity", side="buy", order_type="market", time_in_force="day", qty=Decimal(1),
                             client_order_id=f"pl-{uuid.uuid4().hex}", received_at=now)
        record.save(force_insert=True)
        records.append(record)

    def update(event: str, record: OrderRecord) -> TradeUpdate:
        filled = "1" if event == "fill" else "0"
        order = order_from_json({"id": f"b-{record.client_order_id}", "client_order_id": record.client_order_id, "symbol": "AAPL",
                                 "asset_class": "us_equity", "side": "buy", "type": "market", "time_in_force": "day",
                                 "status": "filled" if event == "fill" else "new", "qty": "1", "filled_qty": filled,
                                 "filled_avg_price": "1.00" if event == "fill" else None, "created_at": now.isoformat()})
        execution = ({"qty": Decimal(1), "price": Decimal(1), "position_qty": Decimal(1), "execution_id": uuid.uuid4().hex}
                     if event == "fill" else {})
        return TradeUpdate(event=event, order=order, timestamp=datetime.now(UTC), received_at=datetime.now(UTC), **execution)

    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    result = {"orders": args.orders, "loadavg": os.getloadavg()[0]}
    for name, events, mine in (("new", ("new",), records[:args.orders + 10]), ("fill", ("fill",), records[:args.orders + 10]),
                               ("new+fill", ("new", "fill"), records[args.orders + 10:])):
        for record in mine[:9]:  # warm-up (the connection prepares its statements)
            ledger.trade_updates_record([(account, update(event, record)) for event in events])
        with CaptureQueriesContext(connection) as queries:
            ledger.trade_updates_record([(account, update(event, mine[9])) for event in events])
        batches = [[(account, update(event, record)) for event in events] for record in mine[10:]]
        cpu, backend, wall = time.process_time(), cpu_seconds(pid), time.perf_counter()
        for batch in batches:
            ledger.trade_updates_record(batch)
        n = len(batches)
        result[name] = {"client_cpu_ms": round((time.process_time() - cpu) * 1000 / n, 3),
                         "backend_cpu_ms": round((cpu_seconds(pid) - backend) * 1000 / n, 3),
                         "wall_ms": round((time.perf_counter() - wall) * 1000 / n, 3),
                         "statements": [q["sql"][:60] for q in queries.captured_queries]}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
