"""Load sources into the raw schema through COPY: one atomic batch per file or per data interval."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import adapt, postgres, pq, sql

from journeyflow import erasure, jsonl_copy
from journeyflow.readers import (
    GoodRow,
    RejectedRow,
    SourceRecord,
    check_any_json,
    read_source_file,
    typed_rows,
)
from journeyflow.source_state import STATE_DDL, Window, record_state
from journeyflow.sources import SourceSpec

log = logging.getLogger(__name__)

BATCHES_TABLE = "raw._load_batches"
METADATA_COLUMNS = [
    "_batch_id",
    "_source",
    "_source_file",
    "_line_number",
    "_loaded_at",
    "_record",
]
METADATA_TYPES = ["text", "text", "text", "integer", "timestamptz", "jsonb"]
REJECTED_COLUMNS = [
    "_batch_id",
    "_source",
    "_source_file",
    "_line_number",
    "_reason",
    "_raw_text",
    "_loaded_at",
]
REJECT_SPOOL_BYTES = 8 << 20


class SourceUnavailable(RuntimeError):
    """A source's folder is missing or unreadable: the source is down, nothing is loaded."""


class RejectionRateExceeded(RuntimeError):
    """Too many malformed rows in one batch: the batch is not loaded."""


@dataclass
class FileLoad:
    """What happened to one batch (a file, or one data interval of an API or table)."""

    source: str
    file: str
    batch_id: str
    status: str  # loaded | skipped
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_fetched: int = 0
    rows_erased: int = 0  # records of erased people, dropped on purpose (see erasure.py)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Batch:
    """Constant metadata written on every row of one batch."""

    batch_id: str
    source: str
    origin: str
    loaded_at: datetime


def _qualified(table: str) -> sql.Identifier:
    return sql.Identifier(*table.split("."))


def refresh_statistics(conn: psycopg.Connection, spec: SourceSpec, loads: list[FileLoad]) -> None:
    """After rows arrived: ANALYZE the raw table and summarize the new block ranges of its
    load-time index.

    The models and gates look its rows up by key and load time. Without statistics
    (autovacuum off or behind a big load) the planner guessed a sequential scan comparing
    every row with every looked-up key; a block range appended since the last summary is
    not summarized until vacuum does it, and an unsummarized range matches every
    condition, so finding the rows of the latest load read the whole table.
    """
    if any(load.rows_loaded for load in loads):
        with conn.transaction():
            conn.execute(sql.SQL("analyze {}").format(_qualified(spec.table)))
            conn.execute(
                "select brin_summarize_new_values(%s::regclass)",
                (sql.Identifier(_schema_of(spec), load_index_name(spec)).as_string(conn),),
            )


def load_index_name(spec: SourceSpec) -> str:
    """The block-range index of a raw table over load time and file."""
    return f"{spec.name}__load_idx"


def key_index_name(spec: SourceSpec) -> str:
    """The B-tree index of a raw table over its record key."""
    return f"{spec.name}__key_idx"


def ensure_raw_schema(conn: psycopg.Connection, spec: SourceSpec) -> None:
    """Create the raw, rejected, batch and state tables; add newly declared columns (drift)."""
    conn.execute("create schema if not exists raw")
    conn.execute(
        f"""create table if not exists {BATCHES_TABLE} (
            batch_id text primary key, source text not null, source_file text not null,
            checksum text not null, rows_loaded integer not null, rows_rejected integer not null,
            run_id text, loaded_at timestamptz not null default now())"""
    )
    conn.execute(STATE_DDL)
    table = _qualified(spec.table)
    conn.execute(
        sql.SQL(
            "create table if not exists {} (_batch_id text not null, _source_file text not null,"
            " _line_number integer not null, _loaded_at timestamptz not null,"
            " _record jsonb not null)"
        ).format(table)
    )
    for name, sql_type in [(column.name, column.sql_type) for column in spec.columns] + [
        ("_source", "text")
    ]:
        conn.execute(
            sql.SQL("alter table {} add column if not exists {} {}").format(
                table, sql.Identifier(name), sql.SQL(sql_type)
            )
        )
    rejected = _qualified(spec.rejected_table)
    conn.execute(
        sql.SQL(
            "create table if not exists {} (_batch_id text not null, _source_file text not null,"
            " _line_number integer not null, _reason text not null, _raw_text text not null,"
            " _loaded_at timestamptz not null)"
        ).format(rejected)
    )
    conn.execute(sql.SQL("alter table {} add column if not exists _source text").format(rejected))
    _check_column_types(conn, spec)
    _ensure_raw_indexes(conn, spec)


def _ensure_raw_indexes(conn: psycopg.Connection, spec: SourceSpec) -> None:
    """Index a raw table by record key, and by load time and file.

    Incremental models and checks read only what was loaded since their previous run
    (`_loaded_at`), and look the keys of those rows up among all the others (`key`); a
    new or re-delivered file first deletes the rows of its previous version
    (`_source_file`). None of them has to scan a whole raw table with its wide `_record`.
    Load time and file follow the order rows are appended in, so one block-range (BRIN)
    index over both finds either at almost no cost per loaded row (two single-column ones
    cost a second index insertion per row); the key needs a B-tree.
    """
    table = _qualified(spec.table)
    for legacy in ("loaded_at", "source_file"):  # single-column BRIN of earlier versions
        conn.execute(
            sql.SQL("drop index if exists {}").format(
                sql.Identifier(_schema_of(spec), f"{spec.name}__{legacy}_idx")
            )
        )
    indexes = (
        (key_index_name(spec), "btree", [spec.key]),
        (load_index_name(spec), "brin", ["_loaded_at", "_source_file"]),
    )
    for name, method, columns in indexes:
        _drop_index_of_other_method(conn, spec, name, method)
        conn.execute(
            sql.SQL("create index if not exists {} on {} using {} ({})").format(
                sql.Identifier(name),
                table,
                sql.SQL(method),
                sql.SQL(", ").join(map(sql.Identifier, columns)),
            )
        )


def _schema_of(spec: SourceSpec) -> str:
    return spec.table.split(".")[0] if "." in spec.table else "public"


def _drop_index_of_other_method(conn, spec: SourceSpec, name: str, method: str) -> None:
    """An index of an earlier version built with another access method is rebuilt."""
    schema = _schema_of(spec)
    other = conn.execute(
        "select 1 from pg_class i join pg_am am on am.oid = i.relam"
        " join pg_namespace n on n.oid = i.relnamespace"
        " where i.relname = %s and n.nspname = %s and am.amname <> %s",
        (name, schema, method),
    ).fetchone()
    if other:
        conn.execute(sql.SQL("drop index {}").format(sql.Identifier(schema, name)))


class ColumnTypeConflict(RuntimeError):
    """A raw column exists with another type than the sources file now declares."""


def _check_column_types(conn: psycopg.Connection, spec: SourceSpec) -> None:
    names = [column.name for column in spec.columns]
    declared = [column.sql_type for column in spec.columns]
    conflicts = conn.execute(
        "select d.name, format_type(a.atttypid, a.atttypmod), d.type"
        " from unnest(%s::text[], %s::text[]) as d(name, type)"
        " join pg_attribute a on a.attrelid = %s::regclass and a.attname = d.name"
        " where a.atttypid <> to_regtype(d.type)::oid",
        (names, declared, spec.table),
    ).fetchall()
    if conflicts:
        described = ", ".join(
            f"{name} is {actual}, declared {wanted}" for name, actual, wanted in conflicts
        )
        raise ColumnTypeConflict(
            f"{spec.table}: {described}; alter or rename the column before loading"
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


def _copy_statement(table: str, columns: list[str], binary: bool = False) -> sql.Composed:
    return sql.SQL("copy {} ({}) from stdin{}").format(
        _qualified(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(" with (format binary)" if binary else ""),
    )


class JsonTextBinaryDumper(adapt.Dumper):
    """The record is already JSON text: binary jsonb is a version byte and that text, as it is."""

    format = pq.Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


def _copy_good_rows(copy, rows: Iterable[GoodRow | RejectedRow], batch: Batch, rejects) -> int:
    """The hot loop: write good rows to COPY, spool rejects as JSON lines; returns rows written."""
    write_row = copy.write_row
    batch_id, source, origin, loaded_at = (
        batch.batch_id,
        batch.source,
        batch.origin,
        batch.loaded_at,
    )
    loaded = 0
    for row in rows:
        if type(row) is GoodRow:
            line_number, values, record_json, row_origin = row
            write_row(
                (
                    *values,
                    batch_id,
                    source,
                    row_origin or origin,
                    line_number,
                    loaded_at,
                    record_json,
                )
            )
            loaded += 1
        else:
            rejects.write(json.dumps(row, ensure_ascii=False) + "\n")
    return loaded


def _spool_rejects(spool, rejects: Iterable[RejectedRow]) -> None:
    spool.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rejects)


def _copy_rejects(cur, spec: SourceSpec, rejects, batch: Batch, table: str) -> int:
    rejects.seek(0)
    count = 0
    with cur.copy(_copy_statement(table, REJECTED_COLUMNS)) as copy:
        for line in rejects:
            line_number, reason, raw_text, origin = json.loads(line)
            copy.write_row(
                (
                    batch.batch_id,
                    batch.source,
                    origin or batch.origin,
                    line_number,
                    reason,
                    raw_text.replace("\x00", ""),
                    batch.loaded_at,
                )
            )
            count += 1
    return count


def copy_batch(
    conn: psycopg.Connection,
    spec: SourceSpec,
    rows: Iterable[GoodRow | RejectedRow],
    batch: Batch,
    table: str | None = None,
    rejected_table: str | None = None,
) -> tuple[int, int]:
    """COPY good rows into the raw table and rejects into the rejected table; (loaded, rejected)."""
    columns = spec.column_names + METADATA_COLUMNS
    with (
        conn.cursor() as cur,
        tempfile.SpooledTemporaryFile(REJECT_SPOOL_BYTES, mode="w+", encoding="utf-8") as spool,
    ):
        cur.adapters.register_dumper(None, JsonTextBinaryDumper)  # by oid, on this cursor only
        with cur.copy(_copy_statement(table or spec.table, columns, binary=True)) as copy:
            copy.set_types([column.sql_type for column in spec.columns] + METADATA_TYPES)
            loaded = _copy_good_rows(copy, rows, batch, spool)
        rejected = _copy_rejects(cur, spec, spool, batch, rejected_table or spec.rejected_table)
    return loaded, rejected


@dataclass(frozen=True)
class Chunking:
    """How a large plain JSON Lines file is split among encoding worker processes."""

    chunk_bytes: int = jsonl_copy.CHUNK_BYTES
    workers: int | None = None  # None: jsonl_copy.default_workers() (0: a thread encodes)
    parallel_min_bytes: int = jsonl_copy.PARALLEL_MIN_BYTES


def copy_jsonl_file(
    conn: psycopg.Connection, spec: SourceSpec, path: Path, batch: Batch, chunking: Chunking
) -> tuple[int, int]:
    """COPY a JSON Lines file encoded chunk by chunk (by workers if large); (loaded, rejected).

    Same rows, line numbers and rejects as `copy_batch` over `read_source_file`.
    """
    constants = (batch.batch_id, batch.source, batch.origin, batch.loaded_at)
    chunks = jsonl_copy.encoded_chunks(
        path, spec, constants, chunking.chunk_bytes, chunking.workers, chunking.parallel_min_bytes
    )
    columns = jsonl_copy.copy_columns(spec)
    with (
        conn.cursor() as cur,
        tempfile.SpooledTemporaryFile(REJECT_SPOOL_BYTES, mode="w+", encoding="utf-8") as spool,
        closing(chunks),
    ):
        with cur.copy(_copy_statement(spec.table, columns, binary=True)) as copy:
            copy.write(jsonl_copy.COPY_SIGNATURE)
            loaded, parsed_any, unparseable = _write_chunks(copy, chunks, spool)
            check_any_json(path, parsed_any, unparseable)
            copy.write(jsonl_copy.COPY_TRAILER)
        rejected = _copy_rejects(cur, spec, spool, batch, spec.rejected_table)
    return loaded, rejected


def _write_chunks(copy, chunks: Iterable[jsonl_copy.EncodedChunk], spool) -> tuple[int, int, int]:
    """Stream encoded chunks into COPY, spool their rejects; (loaded, parsed, not JSON) lines."""
    loaded = parsed_any = unparseable = 0
    for chunk in chunks:
        copy.write(memoryview(chunk.data))
        _spool_rejects(spool, chunk.rejects)
        loaded += chunk.loaded
        parsed_any += chunk.parsed_any
        unparseable += chunk.unparseable
    return loaded, parsed_any, unparseable


def _copy_file(conn, spec, path: Path, batch: Batch, read_rows, chunking) -> tuple[int, int]:
    """Plain JSON Lines files take the chunked encoder; other files are read row by row."""
    if read_rows is read_source_file and spec.format == "jsonl" and path.suffix != ".gz":
        return copy_jsonl_file(conn, spec, path, batch, chunking)
    return copy_batch(conn, spec, read_rows(path, spec), batch)


def check_rejection_rate(spec: SourceSpec, origin: str, loaded: int, rejected: int) -> None:
    total = loaded + rejected
    if total and rejected / total > spec.max_rejected_ratio:
        raise RejectionRateExceeded(
            f"{spec.name}: {rejected} of {total} rows in {origin} are malformed "
            f"({rejected / total:.1%} > max_rejected_ratio {spec.max_rejected_ratio:.1%}); "
            f"batch not loaded"
        )


# --- files: one batch per file, by name and checksum ----------------------------------------


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


def _record_batch(conn, spec, batch: Batch, checksum: str, loaded, rejected, run_id) -> None:
    conn.execute(
        f"insert into {BATCHES_TABLE} (batch_id, source, source_file, checksum, rows_loaded,"
        " rows_rejected, run_id, loaded_at) values (%s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (batch_id) do update set rows_loaded = _load_batches.rows_loaded"
        " + excluded.rows_loaded, rows_rejected = excluded.rows_rejected,"
        " run_id = excluded.run_id, loaded_at = excluded.loaded_at"
        " where excluded.rows_loaded > 0",
        (
            batch.batch_id,
            spec.name,
            batch.origin,
            checksum,
            loaded,
            rejected,
            run_id,
            batch.loaded_at,
        ),
    )


def _drop_erased(conn, spec: SourceSpec, batch_id: str, table: str, rejected: str):
    """Drop the batch's records of erased people (tombstones), logged with their count."""
    erased = erasure.drop_tombstoned_rows(
        conn, _qualified(table), _qualified(rejected), spec.column_names, batch_id
    )
    if sum(erased):
        log.info(
            "%s: dropped %s record(s) and %s quarantined row(s) of erased people",
            spec.name,
            *erased,
        )
    return erased


FileRows = Callable[[Path, SourceSpec], Iterator[GoodRow | RejectedRow]]


def _lock_source(conn: psycopg.Connection, spec: SourceSpec) -> None:
    """Serialize the batches of one source until the transaction ends."""
    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (spec.table,))


@contextmanager
def _key_index_built_after_first_load(conn: psycopg.Connection, spec: SourceSpec):
    """Into a raw table that holds no other rows, COPY without the key B-tree, then build it.

    A first load (or backfill) is the big one: inserting each row's key into the B-tree took
    about a fifth of the server's COPY time, and building the index from the loaded rows in
    the same transaction costs about half of that. Dropping the index locks the table until
    the batch commits; on rollback the index is back as it was. Later batches, into a table
    that holds rows, keep the index and insert into it.
    """
    empty = not conn.execute(
        sql.SQL("select exists (select 1 from {})").format(_qualified(spec.table))
    ).fetchone()[0]
    if empty:
        conn.execute(
            sql.SQL("drop index if exists {}").format(
                sql.Identifier(_schema_of(spec), key_index_name(spec))
            )
        )
    yield
    if empty:
        _ensure_raw_indexes(conn, spec)


def load_file(
    conn: psycopg.Connection,
    spec: SourceSpec,
    path: Path,
    data_dir: Path,
    run_id: str,
    read_rows: FileRows = read_source_file,
    chunking: Chunking = Chunking(),
) -> FileLoad:
    """Load one file as one batch in one transaction; an unchanged file is skipped."""
    relative_file = str(path.relative_to(data_dir))
    checksum = file_checksum(path)
    batch_id = batch_id_for(spec.name, relative_file, checksum)
    with conn.transaction():
        _lock_source(conn, spec)
        if _already_loaded(conn, batch_id):
            return FileLoad(spec.name, relative_file, batch_id, "skipped")
        _delete_file_rows(conn, spec, relative_file)
        loaded_at = conn.execute("select now()").fetchone()[0]
        batch = Batch(batch_id, spec.name, relative_file, loaded_at)
        with _key_index_built_after_first_load(conn, spec):
            loaded, rejected = _copy_file(conn, spec, path, batch, read_rows, chunking)
        check_rejection_rate(spec, relative_file, loaded, rejected)
        erased = _drop_erased(conn, spec, batch_id, spec.table, spec.rejected_table)
        loaded, rejected = loaded - erased[0], rejected - erased[1]
        _record_batch(conn, spec, batch, checksum, loaded, rejected, run_id)
    log.info("%s: loaded %s rows (%s rejected) from %s", spec.name, loaded, rejected, relative_file)
    return FileLoad(
        spec.name,
        relative_file,
        batch_id,
        "loaded",
        loaded,
        rejected,
        loaded + rejected + sum(erased),
        sum(erased),
    )


def source_folder(spec: SourceSpec, data_dir: Path) -> Path:
    """The folder a files source reads from: its path up to the first wildcard."""
    fixed = []
    for part in Path(spec.path).parts[:-1]:
        if any(char in part for char in "*?["):
            break
        fixed.append(part)
    return data_dir.joinpath(*fixed)


def discover_files(spec: SourceSpec, data_dir: Path) -> list[Path]:
    """Files matching the source's glob (or inside its folder) under the data folder, sorted.

    A missing or unreadable source folder means the source is down: SourceUnavailable.
    """
    whole_folder = (data_dir / spec.path).is_dir()
    folder = data_dir / spec.path if whole_folder else source_folder(spec, data_dir)
    if not folder.is_dir() or not os.access(folder, os.R_OK | os.X_OK):
        raise SourceUnavailable(f"{spec.name}: source folder {folder} is missing or unreadable")
    candidates = folder.iterdir() if whole_folder else data_dir.glob(spec.path)
    return sorted(
        path
        for path in candidates
        if path.is_file() and not path.name.startswith(".") and not path.name.endswith(".sig")
    )


def load_files(
    conn: psycopg.Connection,
    spec: SourceSpec,
    data_dir: Path,
    run_id: str,
    read_rows: FileRows = read_source_file,
) -> list[FileLoad]:
    """Load every new or changed file of a file-based source."""
    files = discover_files(spec, data_dir)
    if not files:
        log.warning("%s: no files match %s under %s", spec.name, spec.path, data_dir)
    return [load_file(conn, spec, path, data_dir, run_id, read_rows) for path in files]


# --- APIs and tables: one batch per data interval ---------------------------------------------


def interval_batch_id(source: str, window: Window) -> str:
    """Deterministic batch id of a source's data interval."""
    text = f"{source}|{window.interval_start_text}|{window.interval_end.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _insert_new_versions(conn, spec: SourceSpec, staging: str) -> int:
    """Append staged records whose exact version (key and record) raw does not hold yet."""
    key = sql.Identifier(spec.key)
    result = conn.execute(
        sql.SQL(
            "insert into {raw} select distinct on (s.{key}, s._record) s.* from {staging} s"
            " where not exists (select 1 from {raw} r where r.{key} = s.{key}"
            " and r._record = s._record) order by s.{key}, s._record, s._line_number"
        ).format(raw=_qualified(spec.table), staging=sql.Identifier(staging), key=key)
    )
    return result.rowcount


def _insert_new_rejects(conn, spec: SourceSpec, staging: str) -> int:
    """Append staged rejects this batch has not recorded yet (same reason and text)."""
    result = conn.execute(
        sql.SQL(
            "insert into {rejected} select s.* from {staging} s where not exists (select 1"
            " from {rejected} r where r._batch_id = s._batch_id and r._reason = s._reason"
            " and r._raw_text = s._raw_text)"
        ).format(rejected=_qualified(spec.rejected_table), staging=sql.Identifier(staging))
    )
    return result.rowcount


def load_interval(
    conn: psycopg.Connection,
    spec: SourceSpec,
    records: Iterable[SourceRecord],
    window: Window,
    origin: str,
    run_id: str,
) -> FileLoad:
    """Extract one data interval as one batch: only record versions raw lacks are appended."""
    batch_id = interval_batch_id(spec.name, window)
    with conn.transaction():
        _lock_source(conn, spec)
        loaded_at = conn.execute("select now()").fetchone()[0]
        batch = Batch(batch_id, spec.name, origin, loaded_at)
        staging_tables = (("_incoming", spec.table), ("_incoming_rejects", spec.rejected_table))
        for staging, table in staging_tables:
            conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(staging)))
            conn.execute(
                sql.SQL("create temp table {} (like {} including defaults) on commit drop").format(
                    sql.Identifier(staging), _qualified(table)
                )
            )
        fetched, rejected = copy_batch(
            conn, spec, typed_rows(spec, records), batch, "_incoming", "_incoming_rejects"
        )
        check_rejection_rate(spec, f"interval {window.describe()}", fetched, rejected)
        erased = _drop_erased(conn, spec, batch_id, "_incoming", "_incoming_rejects")
        rejected -= erased[1]
        new_rows = _insert_new_versions(conn, spec, "_incoming")
        _insert_new_rejects(conn, spec, "_incoming_rejects")
        watermark = None
        if spec.updated_at_column:
            watermark = conn.execute(
                sql.SQL("select max({}) from _incoming").format(
                    sql.Identifier(spec.updated_at_column)
                )
            ).fetchone()[0]
        _record_batch(conn, spec, batch, "", new_rows, rejected, run_id)
        record_state(
            conn, spec.name, window, batch_id, watermark, fetched, new_rows, rejected, run_id
        )
        conn.execute("drop table _incoming, _incoming_rejects")
    log.info(
        "%s: interval %s: %s records fetched, %s new, %s rejected",
        spec.name,
        window.describe(),
        fetched,
        new_rows,
        rejected,
    )
    return FileLoad(spec.name, origin, batch_id, "loaded", new_rows, rejected, fetched, sum(erased))
