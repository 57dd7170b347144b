"""Django's PostgreSQL backend with a health check that makes no round trip while the connection is quiet.

`CONN_HEALTH_CHECKS` runs `is_usable()` before the first query of every request and task; Django's runs a
`SELECT 1`, one round trip per order (docs/performance.md, "The connection's health check without a round
trip"). An idle connection has nothing to read: a server that closed it (a restart, `pg_terminate_backend`,
an idle timeout) leaves its termination notice or the end of the stream on the socket. So a quiet socket is
usable as it is, and anything waiting on it is settled by Django's own `SELECT 1`, which reads it.
"""
from __future__ import annotations

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLWrapper
from psycopg import pq


class DatabaseWrapper(PostgreSQLWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()
        try:
            poller = select.poll()  # not select(): no limit on the descriptor's number
            poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
            pending = poller.poll(0)
        except (OSError, ValueError):
            return False
        return super().is_usable() if pending else True
