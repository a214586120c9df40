"""Write-audit-publish for what BI reads: swap a validated build schema in, atomically."""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from journeyflow import access

log = logging.getLogger(__name__)

BUILD_SCHEMA = "reporting__build"
LIVE_SCHEMA = "reporting"


def _tables(conn: psycopg.Connection, schema: str) -> list[str]:
    rows = conn.execute(
        "select table_name from information_schema.tables"
        " where table_schema = %s and table_type = 'BASE TABLE' order by table_name",
        (schema,),
    ).fetchall()
    return [name for (name,) in rows]


def publish_schema(
    conn: psycopg.Connection, build_schema: str, live_schema: str, readers: tuple[str, ...] = ()
) -> list[str]:
    """Move every table of the build schema into the live one in a single transaction.

    Readers of the live schema see either all old tables or all new ones, never a mix, and
    never a half-built table: the swap waits for their queries and they wait for the swap.
    A moved table keeps only its own (empty) grants, so the `readers` roles get SELECT on the
    new tables in the same transaction: they never see a table they may not read.
    """
    with conn.transaction():
        tables = _tables(conn, build_schema)
        if not tables:
            raise RuntimeError(f"nothing to publish: schema {build_schema} has no tables")
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(live_schema)))
        for table in tables:
            live = sql.Identifier(live_schema, table)
            conn.execute(sql.SQL("drop table if exists {}").format(live))
            conn.execute(
                sql.SQL("alter table {} set schema {}").format(
                    sql.Identifier(build_schema, table), sql.Identifier(live_schema)
                )
            )
        for role in readers:
            access.grant_read(conn, role, live_schema)
    log.info("published %s: %s", live_schema, ", ".join(tables))
    return tables
