"""Read the changed rows of a table in an operational PostgreSQL database, streamed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import psycopg
from psycopg import sql

from journeyflow.connections import postgres_url
from journeyflow.readers import SourceRecord
from journeyflow.source_state import Window
from journeyflow.sources import SourceSpec


def _in_window(column: str, window: Window) -> sql.Composable:
    lower = sql.SQL("t.{} >= %(since)s and ").format(sql.Identifier(column))
    upper = sql.SQL("t.{} < %(until)s").format(sql.Identifier(column))
    return sql.SQL("({})").format(sql.Composed([lower, upper]) if window.since else upper)


def changes_query(spec: SourceSpec, window: Window) -> sql.Composed:
    """Rows changed (or soft-deleted, for a timestamp soft-delete column) inside the window."""
    options = spec.postgres
    conditions = [_in_window(spec.updated_at_column, window)]
    soft_delete = options.soft_delete_column
    if soft_delete and spec.column(soft_delete).type == "timestamp":
        conditions.append(_in_window(soft_delete, window))
    return sql.SQL(
        "select row_to_json(t)::text from {table} t where {conditions}"
        " order by t.{updated}, t.{key}"
    ).format(
        table=sql.Identifier(*options.table.split(".")),
        conditions=sql.SQL(" or ").join(conditions),
        updated=sql.Identifier(spec.updated_at_column),
        key=sql.Identifier(spec.key),
    )


def table_records(
    spec: SourceSpec, window: Window, url: str | None = None
) -> Iterator[SourceRecord]:
    """Changed rows as records, through a server-side cursor (constant memory)."""
    options = spec.postgres
    url = url or postgres_url(options.connection)
    params = {"since": window.since, "until": window.until}
    with psycopg.connect(url) as conn:
        conn.execute("set time zone 'UTC'")
        conn.execute("set transaction read only")
        with conn.cursor(name="journeyflow_extract") as cursor:
            cursor.itersize = options.fetch_size
            cursor.execute(changes_query(spec, window), params)
            for number, (text,) in enumerate(cursor, start=1):
                record = json.loads(text, parse_float=Decimal)
                yield SourceRecord(number, text, record, text, options.table)
