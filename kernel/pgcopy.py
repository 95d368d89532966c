"""Bulk inserts with PostgreSQL ``COPY`` (and, where a replay must be skipped, one
INSERT of a JSON array of rows), for the few paths that write thousands of rows
at once (the dispatcher's 09:00 herd). ``bulk_create`` compiles one huge INSERT and
builds a model instance per row, which costs more than the insert itself; ``COPY``
streams plain tuples. Triggers and constraints apply as for any insert.
"""

from collections.abc import Iterable, Sequence

from django.db import connections, models


def copy_rows(
    table: str, columns: Sequence[str], rows: Iterable[Sequence[object]], *, using: str = "default"
) -> int:
    """COPY ``rows`` (tuples in ``columns`` order, values psycopg can adapt; wrap JSON in
    ``psycopg.types.json.Jsonb``) into ``table``; returns how many went in."""
    connection = connections[using]
    quote = connection.ops.quote_name
    sql = f"COPY {quote(table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def copy_objects(objects: Sequence[models.Model], *, using: str = "default") -> int:
    """COPY fully built model instances (all of one model; defaults are not applied)."""
    if not objects:
        return 0
    connection = connections[using]
    fields = type(objects[0])._meta.concrete_fields
    return copy_rows(
        type(objects[0])._meta.db_table,
        [field.column for field in fields],
        (
            [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields]
            for obj in objects
        ),
        using=using,
    )


def json_rows_insert_sql(
    model: type[models.Model],
    *,
    conflict: Sequence[str],
    returning: Sequence[str],
    order_by: Sequence[str] = (),
) -> str:
    """One INSERT of every concrete column of ``model`` from one JSON array of rows (the
    statement's one parameter). PostgreSQL parses the rows (``jsonb_to_recordset``) and
    Python only serialises them; a row whose ``conflict`` key exists is skipped, and
    ``returning`` names the rows that were new. Bulk like COPY, but replay-safe; a
    column added to the model is written without touching the caller."""
    connection = connections["default"]
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    columns = ", ".join(quote(field.column) for field in fields)
    types = ", ".join(f"{quote(field.column)} {field.db_type(connection)}" for field in fields)
    order = f"ORDER BY {', '.join(map(quote, order_by))} " if order_by else ""
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
        f"SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) AS incoming({types}) "
        f"{order}ON CONFLICT ({', '.join(map(quote, conflict))}) DO NOTHING "
        f"RETURNING {', '.join(map(quote, returning))}"
    )
