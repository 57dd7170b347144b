import pytest
from django.db import connection

requires_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only (run with DATABASE_URL=postgres://...)")


def tamper(sql: str, params=()) -> None:
    """Run raw SQL that the append-only trigger would refuse (PostgreSQL: as a replica session, superuser only)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")
