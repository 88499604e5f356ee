"""Fast bulk inserts that return ids (the one piece of ``annotation.importing`` that touches the database).

On PostgreSQL, ids are taken from the table's identity sequence in one query and the rows are streamed with
``COPY ... FROM STDIN`` (psycopg 3), several times faster than ``bulk_create``'s INSERT statements for
100k-row imports. Elsewhere (SQLite in development) it falls back to ``bulk_create``. Constraints and
foreign keys are checked by the database either way, inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from django.db import connection, models
from django.utils import timezone

BATCH_SIZE = 2000
_EMPTY = {dict: "{}", list: "[]", str: '""'}


def _defaults(model: type[models.Model], columns: Sequence[str]) -> tuple[list[str], list]:
    """Columns the caller did not give, with the value Django would have used on save."""
    now = timezone.now()
    names, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.attname in columns:
            continue
        if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
            value = now
        else:
            value = field.get_default()  # the declared default, "" for blank text, else None
        names.append(field.attname)
        values.append(value)
    return names, values


def insert_rows(model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence]) -> list[int]:
    """Insert ``rows`` (tuples of values for ``columns``, by attname) and return their new ids in order."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objs = model._default_manager.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=BATCH_SIZE
        )
        return [obj.pk for obj in objs]
    extra_names, extra_values = _defaults(model, columns)
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    json_columns = {
        i for i, name in enumerate([*columns, *extra_names]) if isinstance(by_attname[name], models.JSONField)
    }
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(n) for n in ["id", *columns, *extra_names])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, len(rows)],
        )
        ids = [r[0] for r in cursor.fetchall()]
        with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for pk, row in zip(ids, rows, strict=True):
                values = [pk, *row, *extra_values]
                for i in json_columns:
                    value = values[i + 1]
                    if value is not None:
                        empty = _EMPTY.get(type(value)) if not value else None  # skip dumps for {}, []
                        values[i + 1] = empty or json.dumps(value, ensure_ascii=False)
                copy.write_row(values)
    return ids
