"""Load source files into the raw schema: one atomic COPY batch per file, skipped when unchanged."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from journeyflow.readers import GoodRow, RejectedRow, read_source_file
from journeyflow.sources import SourceSpec

log = logging.getLogger(__name__)

BATCHES_TABLE = "raw._load_batches"
METADATA_COLUMNS = ["_batch_id", "_source_file", "_line_number", "_loaded_at", "_record"]
REJECTED_COLUMNS = [
    "_batch_id",
    "_source_file",
    "_line_number",
    "_reason",
    "_raw_text",
    "_loaded_at",
]


class SourceUnavailable(RuntimeError):
    """A source's folder is missing or unreadable: the source is down, nothing is loaded."""


class RejectionRateExceeded(RuntimeError):
    """Too many malformed rows in one file: the batch is not loaded."""


@dataclass
class FileLoad:
    source: str
    file: str
    batch_id: str
    status: str  # loaded | skipped
    rows_loaded: int = 0
    rows_rejected: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _qualified(table: str) -> sql.Identifier:
    return sql.Identifier(*table.split("."))


def ensure_raw_schema(conn: psycopg.Connection, spec: SourceSpec) -> None:
    """Create the raw, rejected and batch tables; add newly declared columns (schema drift)."""
    conn.execute("create schema if not exists raw")
    conn.execute(
        f"""create table if not exists {BATCHES_TABLE} (
            batch_id text primary key, source text not null, source_file text not null,
            checksum text not null, rows_loaded integer not null, rows_rejected integer not null,
            run_id text, loaded_at timestamptz not null default now())"""
    )
    table = _qualified(spec.table)
    conn.execute(
        sql.SQL(
            "create table if not exists {} (_batch_id text not null, _source_file text not null,"
            " _line_number integer not null, _loaded_at timestamptz not null,"
            " _record jsonb not null)"
        ).format(table)
    )
    for column in spec.columns:
        conn.execute(
            sql.SQL("alter table {} add column if not exists {} {}").format(
                table, sql.Identifier(column.name), sql.SQL(column.sql_type)
            )
        )
    conn.execute(
        sql.SQL(
            "create table if not exists {} (_batch_id text not null, _source_file text not null,"
            " _line_number integer not null, _reason text not null, _raw_text text not null,"
            " _loaded_at timestamptz not null)"
        ).format(_qualified(spec.rejected_table))
    )


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def batch_id_for(source: str, relative_file: str, checksum: str) -> str:
    """Deterministic batch id: the same file content always gets the same id."""
    return hashlib.sha256(f"{source}|{relative_file}|{checksum}".encode()).hexdigest()[:20]


def _already_loaded(conn: psycopg.Connection, batch_id: str) -> bool:
    query = f"select 1 from {BATCHES_TABLE} where batch_id = %s"
    return conn.execute(query, (batch_id,)).fetchone() is not None


def _delete_file_rows(conn: psycopg.Connection, spec: SourceSpec, relative_file: str) -> None:
    for table in (spec.table, spec.rejected_table):
        conn.execute(
            sql.SQL("delete from {} where _source_file = %s").format(_qualified(table)),
            (relative_file,),
        )
    conn.execute(
        f"delete from {BATCHES_TABLE} where source = %s and source_file = %s",
        (spec.name, relative_file),
    )


def _copy_statement(table: str, columns: list[str]) -> sql.Composed:
    return sql.SQL("copy {} ({}) from stdin").format(
        _qualified(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def _copy_file(conn, spec: SourceSpec, path: Path, relative_file: str, batch_id: str, loaded_at):
    """Stream one file into the raw and rejected tables; returns (loaded, rejected) counts."""
    loaded = rejected = 0
    good_columns = spec.column_names + METADATA_COLUMNS
    with conn.cursor() as cur:
        rejects: list[RejectedRow] = []
        with cur.copy(_copy_statement(spec.table, good_columns)) as copy:
            for row in read_source_file(path, spec):
                if isinstance(row, GoodRow):
                    record = json.dumps(row.record, default=str)
                    copy.write_row(
                        (*row.values, batch_id, relative_file, row.line_number, loaded_at, record)
                    )
                    loaded += 1
                else:
                    rejects.append(row)
        with cur.copy(_copy_statement(spec.rejected_table, REJECTED_COLUMNS)) as copy:
            for row in rejects:
                copy.write_row(
                    (batch_id, relative_file, row.line_number, row.reason, row.raw_text, loaded_at)
                )
        rejected = len(rejects)
    return loaded, rejected


def _check_rejection_rate(spec: SourceSpec, relative_file: str, loaded: int, rejected: int) -> None:
    total = loaded + rejected
    if total and rejected / total > spec.max_rejected_ratio:
        raise RejectionRateExceeded(
            f"{spec.name}: {rejected} of {total} rows in {relative_file} are malformed "
            f"({rejected / total:.1%} > max_rejected_ratio {spec.max_rejected_ratio:.1%}); "
            f"batch not loaded"
        )


def load_file(
    conn: psycopg.Connection, spec: SourceSpec, path: Path, data_dir: Path, run_id: str
) -> FileLoad:
    """Load one file as one batch in one transaction; an unchanged file is skipped."""
    relative_file = str(path.relative_to(data_dir))
    checksum = file_checksum(path)
    batch_id = batch_id_for(spec.name, relative_file, checksum)
    with conn.transaction():
        if _already_loaded(conn, batch_id):
            return FileLoad(spec.name, relative_file, batch_id, "skipped")
        _delete_file_rows(conn, spec, relative_file)
        loaded_at = conn.execute("select now()").fetchone()[0]
        loaded, rejected = _copy_file(conn, spec, path, relative_file, batch_id, loaded_at)
        _check_rejection_rate(spec, relative_file, loaded, rejected)
        conn.execute(
            f"insert into {BATCHES_TABLE} (batch_id, source, source_file, checksum, rows_loaded,"
            " rows_rejected, run_id, loaded_at) values (%s, %s, %s, %s, %s, %s, %s, %s)",
            (batch_id, spec.name, relative_file, checksum, loaded, rejected, run_id, loaded_at),
        )
    log.info("%s: loaded %s rows (%s rejected) from %s", spec.name, loaded, rejected, relative_file)
    return FileLoad(spec.name, relative_file, batch_id, "loaded", loaded, rejected)


def source_folder(spec: SourceSpec, data_dir: Path) -> Path:
    """The folder a files source reads from: its path up to the first wildcard."""
    fixed = []
    for part in Path(spec.path).parts[:-1]:
        if any(char in part for char in "*?["):
            break
        fixed.append(part)
    return data_dir.joinpath(*fixed)


def discover_files(spec: SourceSpec, data_dir: Path) -> list[Path]:
    """Files matching the source's glob under the data folder, in a stable order."""
    folder = source_folder(spec, data_dir)
    if not folder.is_dir() or not os.access(folder, os.R_OK | os.X_OK):
        raise SourceUnavailable(f"{spec.name}: source folder {folder} is missing or unreadable")
    return sorted(path for path in data_dir.glob(spec.path) if path.is_file())


def extract_source(
    conn: psycopg.Connection, spec: SourceSpec, data_dir: Path, run_id: str
) -> list[FileLoad]:
    """Load every new or changed file of one source into raw."""
    with conn.transaction():
        ensure_raw_schema(conn, spec)
    files = discover_files(spec, data_dir)
    if not files:
        log.warning("%s: no files match %s under %s", spec.name, spec.path, data_dir)
    return [load_file(conn, spec, path, data_dir, run_id) for path in files]
