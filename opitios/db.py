"""Hot-path SQL the ORM spends too much CPU building: ``UPDATE <table> SET <fields> WHERE pk = ?``
and the ``INSERT`` of a new row (bench.profile_order --cprofile --cpu: a third of the order's claim).

The statement text depends only on the model, the fields and the database, so it is built once;
the values go through each field's ``get_db_prep_save`` as ``Model.save()`` would send them.
Used where a write runs per order or per account in a sweep (trading and sellbot services).
"""
from __future__ import annotations

from functools import lru_cache

from django.db import connections, models


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
def _insert_sql(model: type[models.Model], alias: str) -> tuple[str, tuple[models.Field, ...], bool]:
    connection = connections[alias]
    meta, qn = model._meta, connection.ops.quote_name
    fields = tuple(f for f in meta.concrete_fields if f is not meta.auto_field and not getattr(f, "generated", False))
    returning = connection.features.can_return_columns_from_insert
    sql = (f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "  # noqa: S608 - quoted identifiers from _meta
           f"VALUES ({', '.join(['%s'] * len(fields))})" + (f" RETURNING {qn(meta.pk.column)}" if returning else ""))
    return sql, fields, returning


def insert(instance: models.Model, *, using: str | None = None) -> None:
    """INSERT the new ``instance`` as ``save(force_insert=True)`` would, with the statement built once
    per model (and no signals: only for models nothing listens to). Sets its pk."""
    model = type(instance)
    alias = using or model.objects.db
    connection = connections[alias]
    sql, fields, returning = _insert_sql(model, alias)
    params = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        instance.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    instance._state.adding = False
    instance._state.db = alias
