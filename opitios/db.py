"""Hot-path SQL the ORM spends too much CPU building: ``UPDATE <table> SET <fields> WHERE pk = ?``
and the ``INSERT`` of a new row (bench.profile_order --cprofile --cpu: a third of the order's claim).

The statement text depends only on the model, the fields and the database, so it is built once;
the values go through each field's ``get_db_prep_save`` as ``Model.save()`` would send them.
Used where a write runs per order or per account in a sweep (trading and sellbot services).

``fetchone_prepared`` runs one such statement as a server-side prepared statement on PostgreSQL
(docs/performance.md, "Two statements of an order are prepared"): the order's claim and its outcome.
"""
from __future__ import annotations

from functools import lru_cache

from django.db import NotSupportedError, connections, models


def _assignment(column: str, keep: bool) -> str:
    # keep: a value already stored (not empty) wins over the one sent
    return f"{column} = COALESCE(NULLIF({column}, ''), %s)" if keep else f"{column} = %s"


@lru_cache(maxsize=64)
def _update_sql(model: type[models.Model], fields: tuple[str, ...], alias: str, keep: tuple[str, ...] = ()) -> str:
    connection = connections[alias]
    meta, qn = model._meta, connection.ops.quote_name
    assignments = ", ".join(_assignment(qn(meta.get_field(name).column), name in keep) for name in fields)
    return f"UPDATE {qn(meta.db_table)} SET {assignments} WHERE {qn(meta.db_table)}.{qn(meta.pk.column)} = %s"  # noqa: S608 - quoted identifiers from _meta


def update_by_pk(instance: models.Model, fields: tuple[str, ...], *, using: str | None = None,
                 keep: tuple[str, ...] = ()) -> tuple[str, list]:
    """SQL and parameters that write ``fields`` of ``instance`` to its row. Text fields named in ``keep``
    are written only where the row's value is empty (another writer may have set it first)."""
    model = type(instance)
    alias = using or model.objects.db
    connection = connections[alias]
    params = [field.get_db_prep_save(getattr(instance, field.attname), connection) for field in map(model._meta.get_field, fields)]
    return _update_sql(model, fields, alias, keep), [*params, instance.pk]


@lru_cache(maxsize=64)
def _insert_sql(model: type[models.Model], alias: str, rows: int = 1) -> tuple[str, tuple[models.Field, ...], bool]:
    connection = connections[alias]
    meta, qn = model._meta, connection.ops.quote_name
    fields = tuple(f for f in meta.concrete_fields if f is not meta.auto_field and not getattr(f, "generated", False))
    returning = connection.features.can_return_columns_from_insert
    values = ", ".join([f"({', '.join(['%s'] * len(fields))})"] * rows)
    sql = (f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "  # noqa: S608 - quoted identifiers from _meta
           f"VALUES {values}" + (f" RETURNING {qn(meta.pk.column)}" if returning else ""))
    return sql, fields, returning


def insert(instance: models.Model, *, using: str | None = None) -> None:
    """INSERT the new ``instance`` as ``save(force_insert=True)`` would, with the statement built once
    per model (and no signals: only for models nothing listens to). Sets its pk."""
    alias = using or type(instance).objects.db
    connection = connections[alias]
    sql, params, returning = insert_statement(instance, using=alias)
    if returning:
        pk = fetchone_prepared(connection, sql, params)[0]
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            pk = cursor.lastrowid
    inserted(instance, pk, using=alias)


def insert_statement(instance: models.Model, *, using: str | None = None) -> tuple[str, list, bool]:
    """``insert``'s statement, its parameters and whether it returns the pk: for a caller that sends
    it as part of a larger statement (a ``WITH``), then calls ``inserted``."""
    model = type(instance)
    alias = using or model.objects.db
    connection = connections[alias]
    sql, fields, returning = _insert_sql(model, alias)
    return sql, [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields], returning


def insert_rows_statement(instances: list[models.Model], *, using: str) -> tuple[str, list, bool]:
    """``insert_statement`` for several new instances of one model in one multi-row INSERT (the text built
    once per number of rows); the pks it returns come in the order of ``instances``' sequence values."""
    model = type(instances[0])
    connection = connections[using]
    sql, fields, returning = _insert_sql(model, using, len(instances))
    return sql, [field.get_db_prep_save(field.pre_save(i, True), connection) for i in instances for field in fields], returning


def inserted(instance: models.Model, pk, *, using: str) -> None:
    """``instance`` is now the stored row ``pk``."""
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = using


def prepares(connection) -> bool:
    """Whether ``fetchone_prepared`` prepares on ``connection``: PostgreSQL with psycopg's
    ``prepare_threshold`` set in the database OPTIONS (settings ``DB_PREPARED_STATEMENTS``)."""
    return connection.vendor == "postgresql" and connection.settings_dict["OPTIONS"].get("prepare_threshold") is not None


def fetchone_prepared(connection, sql: str, params: list) -> tuple | None:
    """Execute one statement and return its first row. Where ``prepares(connection)``, it is bound
    server-side and prepared once per connection (psycopg keeps the statement per text and parameter
    types); elsewhere it is ``connection.cursor()``'s client-side binding, as every other query.

    Either way it goes through Django's cursor wrapper: execute wrappers, ``connection.queries`` and
    the translation of errors (``IntegrityError``) see it like any other statement.

    A migration that changes the type of a column the statement returns makes PostgreSQL refuse the
    plan prepared before it ("cached plan must not change result type", for this connection's whole
    life). Outside a transaction the statement is run once more on a new connection; inside one, the
    rollback that follows makes psycopg drop its prepared statements and the caller's retry prepares
    anew."""
    if not prepares(connection):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    try:
        return _fetchone_prepared(connection, sql, params)
    except NotSupportedError as exc:
        if connection.in_atomic_block or "cached plan must not change result type" not in str(exc):
            raise
    connection.close()
    return _fetchone_prepared(connection, sql, params)


def _fetchone_prepared(connection, sql: str, params: list) -> tuple | None:
    # What BaseDatabaseWrapper.cursor() does, with a server-binding cursor in place of the connection's
    # client-binding one (Django offers the choice only for every query of the connection, OPTIONS
    # server_side_binding). No time zone loader is registered: these statements return no timestamps.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        wrapped = connection._prepare_cursor(_preparing_cursor()(connection.connection))
    with wrapped as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


@lru_cache(maxsize=1)
def _preparing_cursor():
    from django.db.backends.postgresql.base import ServerBindingCursor  # psycopg: PostgreSQL only

    class PreparingCursor(ServerBindingCursor):
        """psycopg's server-binding cursor, preparing what it executes (Django's CursorWrapper passes
        no ``prepare``)."""

        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)

        def _convert_query(self, query, params=None):
            # Kept, as psycopg's executemany does: Django's connection.queries reads the statement sent
            # (with $1, $2... placeholders) from cursor._query, which execute leaves unset here.
            self._query = super()._convert_query(query, params)
            return self._query

    return PreparingCursor
