import pytest
from django.db import IntegrityError, connection, transaction

from audit.models import AppendOnlyError, AuditEvent
from audit.services import audit_record
from tests.audit.conftest import requires_postgres

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    return audit_record(actor_type="system", actor_id="t", action="account.synced", data={"n": 1})


def test_model_refuses_to_save_an_existing_row(event):
    stored = AuditEvent.objects.get(seq=event.seq)
    stored.action = "order.cancelled"
    with pytest.raises(AppendOnlyError):
        stored.save()


def test_model_refuses_writes_that_bypass_the_chain():
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.create(seq=1, at="2026-01-01T00:00:00Z", actor_type="system", action="x.y", prev_hash="0", hash="1")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_create([AuditEvent(seq=1)])


def test_model_refuses_delete(event):
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.get(seq=event.seq).delete()


@pytest.mark.parametrize("operation", [
    lambda qs: qs.update(action="order.cancelled"),
    lambda qs: qs.delete(),
    lambda qs: qs.bulk_update(list(qs), ["action"]),
    lambda qs: qs.update_or_create(seq=1, defaults={"action": "a.b"}),
    lambda qs: qs._raw_delete(qs.db),
])
def test_queryset_refuses_update_and_delete(event, operation):
    with pytest.raises(AppendOnlyError):
        operation(AuditEvent.objects.all())
    assert AuditEvent.objects.get(seq=event.seq).action == "account.synced"


@requires_postgres
@pytest.mark.parametrize("sql", [
    "UPDATE audit_auditevent SET action = 'order.cancelled'",
    "UPDATE audit_auditevent SET action = 'x' WHERE seq = -1",  # statement-level: refused even when no row matches
    "DELETE FROM audit_auditevent",
])
def test_postgres_trigger_rejects_update_delete_and_truncate(event, sql):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert AuditEvent.objects.get(seq=event.seq).action == "account.synced"


@requires_postgres
def test_postgres_trigger_rejects_truncate():
    # No event in this transaction: an insert's pending FK checks would make PostgreSQL refuse TRUNCATE by itself.
    with pytest.raises(IntegrityError, match="append-only: TRUNCATE"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent")


@requires_postgres
def test_postgres_trigger_is_installed():
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_auditevent'::regclass AND NOT tgisinternal ORDER BY 1")
        assert [row[0] for row in cursor.fetchall()] == ["audit_auditevent_no_truncate", "audit_auditevent_no_update_delete"]
