"""The PostgreSQL backend's health check (opitios/postgresql): no round trip on a quiet connection, Django's
`SELECT 1` whenever something waits on the socket, and a connection the server closed is never reused."""
from __future__ import annotations

import select
import time

import pytest
from django.db import connection, connections

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only (run with DATABASE_URL=postgres://...)"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def own():
    """A connection of its own, outside the test's transaction: idle between statements, as between requests."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def _run(wrapper, sql: str, params=()):
    with wrapper.connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def _last_query(pid: int) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cur.fetchone()
    return row[0] if row else ""


def _readable(wrapper, timeout: float = 30.0) -> None:
    """Wait (for the event, not a time) until the server has written to the idle connection."""
    deadline = time.monotonic() + timeout
    while not select.select([wrapper.connection.fileno()], [], [], 0.1)[0]:
        assert time.monotonic() < deadline, "nothing arrived on the connection"


def test_a_quiet_connection_is_usable_without_a_round_trip(own):
    pid = own.connection.info.backend_pid
    _run(own, "SELECT 42 AS health_marker")
    assert own.is_usable()
    assert own.is_usable()
    assert _last_query(pid) == "SELECT 42 AS health_marker"


def test_a_connection_the_server_terminated_is_not_usable_and_is_replaced(own):
    pid = own.connection.info.backend_pid
    with connection.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", [pid])
    _readable(own)
    assert own.is_usable() is False
    # What Django does before a request's first query: close it, then connect afresh on use.
    own.health_check_enabled, own.health_check_done = True, False
    own.close_if_health_check_failed()
    with own.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        assert cur.fetchone()[0] != pid


def test_anything_waiting_on_the_socket_is_settled_by_a_select_1(own):
    pid = own.connection.info.backend_pid
    _run(own, "LISTEN opitios_health_check")
    with connection.cursor() as cur:
        cur.execute("NOTIFY opitios_health_check")
    _readable(own)
    assert own.is_usable()  # a harmless notification: Django's SELECT 1 reads it and succeeds
    assert _last_query(pid) == "SELECT 1"


def test_a_closed_connection_is_not_usable(own):
    own.connection.close()
    assert own.is_usable() is False
