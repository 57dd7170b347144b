import pytest
from django.db import connection

from tests.audit.factories import ensure_compliance_group

requires_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only (run with DATABASE_URL=postgres://...)")


@pytest.fixture
def compliance_group(db):
    return ensure_compliance_group()


@pytest.fixture
def officer(compliance_group, django_user_model):
    user = django_user_model.objects.create_user("officer", password="view-only-Pa55!", is_staff=True)
    user.groups.add(compliance_group)
    return user


def tamper(sql: str, params=()) -> None:
    """Run raw SQL that the append-only trigger would refuse (PostgreSQL: as a replica session, superuser only)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")
