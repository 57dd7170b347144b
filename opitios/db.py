"""Hot-path SQL the ORM spends too much CPU building: ``UPDATE <table> SET <fields> WHERE pk = ?``.

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
