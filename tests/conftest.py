import os

import pytest

# The alpacasim harness: fixtures `sim_server` (session) and `sim` (reset per test); alerts: `receiver`, `alert_holds`.
pytest_plugins = ["tests.helpers.sim", "tests.helpers.alerts"]


def pytest_collection_modifyitems(config, items):
    """Slow whole-stack fault tests run only when RUN_SLOW=1 (the PostgreSQL/Redis CI pass)."""
    if os.environ.get("RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set RUN_SLOW=1 (the CI's PostgreSQL/Redis pass runs these)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    """Let transactional tests' flush empty audit_auditevent on PostgreSQL.

    The append-only trigger (audit/migrations/0002) refuses TRUNCATE. The flush that ends each
    transactional test runs as a replication replica (``session_replication_role``, superuser only,
    as the test role is), for which ordinary triggers do not fire.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    if getattr(DatabaseOperations.execute_sql_flush, "_skips_audit_trigger", False):
        return
    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        return original(self, ["SET LOCAL session_replication_role = replica", *sql_list] if sql_list else sql_list)

    execute_sql_flush._skips_audit_trigger = True
    DatabaseOperations.execute_sql_flush = execute_sql_flush


@pytest.fixture(autouse=True)
def _fresh_trading_states():
    """Each process keeps a copy of the trading states (risk/states.py), re-read when the shared version moves.
    A transactional test's flush deletes the rows and the embedded counter without moving anything, so a copy
    taken in one test (a global "reducing") could refuse the next test's orders for up to CHECK_SECONDS."""
    from risk import states

    states._snapshot.clear()
    yield
    states._snapshot.clear()


@pytest.fixture
def compliance_group(db):
    from tests.audit.factories import ensure_compliance_group

    return ensure_compliance_group()


@pytest.fixture
def officer(compliance_group, django_user_model):
    """A compliance officer: staff in the view-only "Compliance officers" group."""
    user = django_user_model.objects.create_user("officer", password="view-only-Pa55!", is_staff=True)
    user.groups.add(compliance_group)
    return user


@pytest.fixture
def officer_client(client, officer):
    client.force_login(officer)
    return client
