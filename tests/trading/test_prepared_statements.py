"""opitios/db.py's fetchone_prepared on PostgreSQL: the order's claim, its outcome statement and the audit
append run as server-side prepared statements, still seen by Django's query tools and error translation; everything
else keeps client-side binding; a migration that changes a returned column's type is survived."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from django.db import IntegrityError, NotSupportedError, connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.services import audit_record
from opitios.db import fetchone_prepared, insert, prepares
from trading.models import OrderRecord, Outcome
from trading.outcome import order_outcome_write

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")

switched_on = pytest.mark.skipif(connection.vendor == "postgresql" and not prepares(connection), reason="DB_PREPARED_STATEMENTS=0")

T0 = datetime(2030, 3, 4, 15, 0, 0, 123456, tzinfo=UTC)


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [row[0] for row in cursor.fetchall()]


def _record(account, client_order_id: str) -> OrderRecord:
    return OrderRecord(account=account, account_type=account.account_type, source="api", user_id="u", symbol="MSFT",
                       asset_class="us_equity", side="buy", order_type="market", time_in_force="day", qty=Decimal(1),
                       client_order_id=client_order_id, received_at=T0)


@switched_on
@pytest.mark.django_db
def test_the_claim_and_the_outcome_are_prepared_and_still_seen(demo_accounts):
    account = demo_accounts["account_001"]
    audit_record(actor_type="system", actor_id=None, action="test.head", account=account)  # the chain's head exists
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(wrapper):
        record = _record(account, "p-1")
        insert(record)
        record.outcome, record.http_status, record.broker_order_id, record.broker_status = Outcome.ACCEPTED, 201, "b-p-1", "accepted"
        order_outcome_write(record, account=account, check=None, outcome=Outcome.ACCEPTED, audit_data={"client_order_id": "p-1"},
                            actor_type="user")
    assert len(queries) == len(seen) == 2, [q["sql"] for q in queries]
    assert queries[0]["sql"].startswith('INSERT INTO "trading_orderrecord"') and "alongside AS (UPDATE" in queries[1]["sql"]
    assert OrderRecord.objects.get(pk=record.pk).broker_status == "accepted"

    prepared = _prepared()
    assert any(s.startswith('INSERT INTO "trading_orderrecord"') for s in prepared)
    assert any("alongside AS (UPDATE" in s for s in prepared)
    # and the plain audit append (the chain's first event above; the ledger's fills)
    assert any(s.startswith("WITH head AS") for s in prepared)
    assert len(prepared) == 3
    OrderRecord.objects.filter(client_order_id="p-1").count()  # the ORM's own queries are never prepared
    assert len(_prepared()) == 3

    insert(_record(account, "p-2"))  # the same statement again: the prepared one is used
    assert len(_prepared()) == 3

    # The claim's conflict is still IntegrityError. The rollback (to the savepoint) makes psycopg drop
    # the connection's prepared statements; the next claim prepares its statement again.
    with pytest.raises(IntegrityError), transaction.atomic():
        insert(_record(account, "p-1"))
    assert _prepared() == []
    insert(_record(account, "p-3"))
    assert [s[:33] for s in _prepared()] == ['INSERT INTO "trading_orderrecord"']


@pytest.mark.django_db
def test_switched_off_nothing_is_prepared(demo_accounts, monkeypatch):
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "prepare_threshold", None)
    insert(_record(demo_accounts["account_001"], "p-4"))
    assert _prepared() == []


@switched_on
@pytest.mark.django_db(transaction=True)
def test_a_migration_changing_a_returned_type_is_survived():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE prepared_probe (id serial PRIMARY KEY, v varchar(10))")
    insert_sql = "INSERT INTO prepared_probe (v) VALUES (%s) RETURNING v"
    try:
        assert fetchone_prepared(connection, insert_sql, ["a"]) == ("a",)
        before = connection.connection
        with psycopg.connect(dbname=connection.settings_dict["NAME"], user=connection.settings_dict["USER"],
                             host=connection.settings_dict["HOST"], port=connection.settings_dict["PORT"], autocommit=True) as other:
            other.execute("ALTER TABLE prepared_probe ALTER COLUMN v TYPE varchar(20)")
        # outside a transaction: once more, on a new connection
        assert fetchone_prepared(connection, insert_sql, ["b"]) == ("b",)
        assert connection.connection is not before

        with psycopg.connect(dbname=connection.settings_dict["NAME"], user=connection.settings_dict["USER"],
                             host=connection.settings_dict["HOST"], port=connection.settings_dict["PORT"], autocommit=True) as other:
            other.execute("ALTER TABLE prepared_probe ALTER COLUMN v TYPE varchar(30)")
        # inside one: the error reaches the caller, and the rollback lets the next attempt prepare anew
        with pytest.raises(NotSupportedError), transaction.atomic():
            fetchone_prepared(connection, insert_sql, ["c"])
        with transaction.atomic():
            assert fetchone_prepared(connection, insert_sql, ["d"]) == ("d",)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE prepared_probe")
