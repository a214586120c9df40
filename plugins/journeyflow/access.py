"""The read-only role BI tools connect as: SELECT on the published reporting schema only."""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)


def ensure_bi_role(conn: psycopg.Connection, role: str, password: str = "") -> None:
    """Create the role if it is missing; with a password it may log in, else it is a group role.

    Roles belong to the whole server, so two pipelines may race to create it: the loser's
    duplicate is ignored. Needs a warehouse user with CREATEROLE.
    """
    conn.execute(
        sql.SQL(
            "do $$ begin create role {} nologin; "
            "exception when duplicate_object or unique_violation then null; end $$"
        ).format(sql.Identifier(role))
    )
    if password:
        conn.execute(
            sql.SQL("alter role {} login password {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
    database = conn.execute("select current_database()").fetchone()[0]
    conn.execute(
        sql.SQL("grant connect on database {} to {}").format(
            sql.Identifier(database), sql.Identifier(role)
        )
    )


def grant_read(conn: psycopg.Connection, role: str, schema: str) -> None:
    """SELECT on every table now in the schema (after a publish: moved tables bring no grants)."""
    conn.execute(
        sql.SQL("grant usage on schema {} to {}").format(
            sql.Identifier(schema), sql.Identifier(role)
        )
    )
    conn.execute(
        sql.SQL("grant select on all tables in schema {} to {}").format(
            sql.Identifier(schema), sql.Identifier(role)
        )
    )
    log.info("granted select on schema %s to %s", schema, role)
