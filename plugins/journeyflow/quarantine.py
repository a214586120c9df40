"""Quarantine replay: rejected rows, once fixed by a person, are re-ingested exactly once."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from journeyflow import erasure
from journeyflow.readers import coerce_record
from journeyflow.sources import SourceSpec

log = logging.getLogger(__name__)

REPLAY_COLUMNS = (
    ("_fixed_record", "jsonb"),
    ("_replayed_at", "timestamptz"),
    ("_replay_error", "text"),
)


@dataclass
class ReplayReport:
    source: str
    replayed: int = 0
    still_invalid: int = 0
    erased: int = 0  # fixes carrying an erased person's identifier: dropped, not loaded


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


def ensure_replay_columns(conn: psycopg.Connection, spec: SourceSpec) -> None:
    """Add the columns a person fills to fix a rejected row (`_fixed_record`) and replay state."""
    for column, column_type in REPLAY_COLUMNS:
        conn.execute(
            sql.SQL("alter table {} add column if not exists {} {}").format(
                _table(spec.rejected_table), sql.Identifier(column), sql.SQL(column_type)
            )
        )


def _pending_fixes(conn: psycopg.Connection, spec: SourceSpec) -> list[dict]:
    query = sql.SQL(
        "select _batch_id, _source_file, _line_number, _fixed_record"
        " from {} where _fixed_record is not null and _replayed_at is null"
        " order by _source_file, _line_number for update"
    ).format(_table(spec.rejected_table))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query).fetchall()


def _insert_fixed_row(conn: psycopg.Connection, spec: SourceSpec, fix: dict, values) -> None:
    columns = [
        *spec.column_names,
        "_batch_id",
        "_source",
        "_source_file",
        "_line_number",
        "_loaded_at",
        "_record",
    ]
    conn.execute(
        sql.SQL("insert into {} ({}) values ({}, now(), %s)").format(
            _table(spec.table),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * (len(spec.columns) + 4)),
        ),
        (
            *values,
            fix["_batch_id"],
            spec.name,
            fix["_source_file"],
            fix["_line_number"],
            json.dumps(fix["_fixed_record"]),
        ),
    )


def _mark(conn: psycopg.Connection, spec: SourceSpec, fix: dict, error: str | None) -> None:
    replayed = sql.SQL("now()") if error is None else sql.SQL("null")
    conn.execute(
        sql.SQL(
            "update {} set _replayed_at = {}, _replay_error = %s"
            " where _source_file = %s and _line_number = %s"
        ).format(_table(spec.rejected_table), replayed),
        (error, fix["_source_file"], fix["_line_number"]),
    )


def _drop_if_erased(conn: psycopg.Connection, spec: SourceSpec, fix: dict) -> bool:
    return erasure.drop_replayed_row_if_erased(
        conn,
        _table(spec.table),
        _table(spec.rejected_table),
        spec.column_names,
        fix["_source_file"],
        fix["_line_number"],
    )


def replay_fixed_rows(conn: psycopg.Connection, spec: SourceSpec) -> ReplayReport:
    """Load every fixed, not yet replayed rejected row into raw, in one transaction."""
    report = ReplayReport(spec.name)
    with conn.transaction():
        ensure_replay_columns(conn, spec)
        for fix in _pending_fixes(conn, spec):
            try:
                values = coerce_record(spec, fix["_fixed_record"])
            except ValueError as error:
                _mark(conn, spec, fix, f"fix still invalid: {error}")
                report.still_invalid += 1
                continue
            _insert_fixed_row(conn, spec, fix, values)
            if _drop_if_erased(conn, spec, fix):
                report.erased += 1
                continue
            _mark(conn, spec, fix, None)
            report.replayed += 1
    log.info(
        "%s: replayed %d fixed row(s), %d still invalid, %d of erased people dropped",
        spec.name,
        report.replayed,
        report.still_invalid,
        report.erased,
    )
    return report
