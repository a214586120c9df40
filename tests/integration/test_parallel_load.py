"""A JSON Lines file loads the same rows and rejects row by row, chunked, or by workers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from journeyflow import jsonl_copy, loading
from journeyflow.readers import SourceFileError, read_source_file
from journeyflow.sources import parse_sources
from journeyflow.warehouse import ensure_database, with_database

pytestmark = pytest.mark.integration

SPEC = parse_sources(
    {
        "sources": {
            "orders": {
                "kind": "files",
                "path": "*.jsonl",
                "format": "jsonl",
                "key": "order_id",
                "max_rejected_ratio": 0.5,
                "columns": {
                    "order_id": {"type": "text", "required": True},
                    "amount": {"type": "numeric", "required": True},
                    "qty": {"type": "integer"},
                    "paid": {"type": "boolean"},
                    "note": {"type": "text"},
                    "ts": {"type": "timestamp", "required": True},
                },
            }
        }
    }
)["orders"]
CHUNK_BYTES = 300  # many chunks from a small file
PARALLEL = loading.Chunking(chunk_bytes=CHUNK_BYTES, workers=2, parallel_min_bytes=0)
IN_PROCESS = loading.Chunking(chunk_bytes=CHUNK_BYTES, workers=0)
UNUSUAL_LINES = [
    '{"order_id": "g1", "amount": "10.50", "qty": "3", "paid": "yes", "ts": 1790000000}',
    '{"order_id": "g2", "amount": 2, "note": "   ", "ts": "2026-10-01 10:00:00"}',
    '{"order_id": "g3", "amount": 1, "note": "caf\u00e9 \U0001f600", "ts": "2026-10-01T10:00:00Z"}',
    '{"order_id": "g4", "amount": 1, "note": "pair \\ud83d\\ude00", "ts": "2026-10-01"}',
    '{"order_id": 5, "amount": 1, "ts": "2026-10-01T10:00:00Z"}',
    '{"order_id": "b1", "amount": "n/a", "ts": "2026-10-01T10:00:00Z"}',
    '{"order_id": "b2", "amount": 1, "ts": "not-a-time"}',
    '{"order_id": "b3", "amount": NaN, "ts": "2026-10-01T10:00:00Z"}',
    '{"order_id": "b4", "amount": 1, "note": "nul \\u0000", "ts": "2026-10-01T10:00:00Z"}',
    '{"order_id": "b5", "amount": 1, "note": "lone \\ud800", "ts": "2026-10-01T10:00:00Z"}',
    '{"amount": 1, "ts": "2026-10-01T10:00:00Z"}',
    '{"order_id": "g5", "amount": 1, "ts": "2026-10-01T10:00:00.1234567Z"}',
    '{"order_id": "b6", "amount": 1, "ts": "2026-10-01T10:00:00z"}',
    '{"order_id":"g6","amount":1,"ts":"2026-10-01T10:00:00.5","qty":"","paid":""}',
    "not json at all",
    "[1, 2]",
    "",
    "   ",
]


def _ordinary(number: int) -> str:
    """Compact lines mostly, so that some chunks hold no space (nothing can be blank there)."""
    record = {
        "order_id": f"o{number}",
        "amount": number * 1.25,
        "qty": number,
        "paid": number % 2 == 0,
        "note": None if number % 3 else f"note-{number}",
        "ts": f"2026-10-{1 + number % 28:02d}T{number % 24:02d}:00:00Z",
        "extra": {"n": number},
    }
    return json.dumps(record, separators=(", ", ": ") if number % 5 == 0 else (",", ":"))


def _write_events(path: Path) -> None:
    """Ordinary lines with every unusual one sprinkled in, mixed line endings, no final newline."""
    lines = []
    for number in range(120):
        lines.append(_ordinary(number))
        if number % 6 == 0:
            lines.append(UNUSUAL_LINES[(number // 6) % len(UNUSUAL_LINES)])
    endings = ["\n", "\r\n", "\n", "\r"]
    text = "".join(line + endings[n % 4] for n, line in enumerate(lines[:-1])) + lines[-1]
    path.write_bytes(text.encode())


@pytest.fixture()
def warehouse(server_url):
    """A fresh warehouse database: raw tables start empty."""
    name = f"journey_test_parallel_{uuid.uuid4().hex[:8]}"
    url = with_database(server_url, name)
    ensure_database(url)
    with psycopg.connect(url, autocommit=True) as conn:
        loading.ensure_raw_schema(conn, SPEC)
        yield conn
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def _forget_loads(conn) -> None:
    conn.execute("truncate raw.orders, raw.orders__rejected, raw._load_batches")


def _tables(conn) -> dict[str, list[tuple]]:
    """Both tables' rows in line order; _loaded_at must be the batch's, then it is left out."""
    columns = ", ".join(SPEC.column_names + ["_line_number", "_batch_id", "_source_file"])
    loaded_at_is_the_batch = (
        "_loaded_at = (select loaded_at from raw._load_batches where batch_id = _batch_id)"
    )
    return {
        "raw": conn.execute(
            f"select {columns}, _source, _record::text, {loaded_at_is_the_batch}"
            " from raw.orders order by _line_number"
        ).fetchall(),
        "rejected": conn.execute(
            "select _line_number, _reason, _raw_text, _source, _batch_id, _source_file,"
            f" {loaded_at_is_the_batch} from raw.orders__rejected order by _line_number"
        ).fetchall(),
    }


def _load(conn, data_dir: Path, **options) -> tuple[loading.FileLoad, dict]:
    _forget_loads(conn)
    load = loading.load_file(conn, SPEC, data_dir / "orders.jsonl", data_dir, "run", **options)
    return load, _tables(conn)


def test_workers_in_process_and_row_by_row_loads_are_identical(warehouse, tmp_path):
    _write_events(tmp_path / "orders.jsonl")
    assert len(list(jsonl_copy.plan_chunks(tmp_path / "orders.jsonl", CHUNK_BYTES))) > 20

    def row_by_row(path, spec):
        return read_source_file(path, spec)

    classic_load, classic = _load(warehouse, tmp_path, read_rows=row_by_row)
    in_process_load, in_process = _load(warehouse, tmp_path, chunking=IN_PROCESS)
    parallel_load, parallel = _load(warehouse, tmp_path, chunking=PARALLEL)

    assert parallel == in_process == classic
    assert parallel_load == in_process_load == classic_load
    assert parallel_load.rows_loaded == 129 and parallel_load.rows_rejected == 9
    assert all(row[-1] for table in parallel.values() for row in table)
    reasons = {raw_text: reason for _, reason, raw_text, *_ in parallel["rejected"]}
    assert "lone UTF-16 surrogate" in reasons[UNUSUAL_LINES[9]]
    first_two = (tmp_path / "orders.jsonl").read_bytes().decode().split("\n")[:2]
    assert [(row[6], json.loads(row[-2])) for row in parallel["raw"][:2]] == [
        (1, json.loads(first_two[0])),
        (2, json.loads(first_two[1])),
    ]


@pytest.mark.parametrize("chunking", [PARALLEL, IN_PROCESS], ids=["workers", "thread"])
def test_an_encoder_failure_rolls_the_whole_file_back(warehouse, tmp_path, chunking):
    path = tmp_path / "orders.jsonl"
    _write_events(path)
    with open(path, "ab") as handle:
        handle.write(b'\n{"order_id": "bad \xff utf-8", "amount": 1, "ts": "2026-10-01"}\n')
    _forget_loads(warehouse)
    with pytest.raises(SourceFileError, match="orders.jsonl: expected JSON Lines in UTF-8"):
        loading.load_file(warehouse, SPEC, path, tmp_path, "run", chunking=chunking)
    assert _tables(warehouse) == {"raw": [], "rejected": []}
    assert warehouse.execute("select count(*) from raw._load_batches").fetchone() == (0,)


def test_a_file_with_no_json_line_fails_in_workers_too(warehouse, tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(f"order,{number},not json\n" for number in range(100)))
    with pytest.raises(SourceFileError, match="no line is JSON"):
        loading.load_file(warehouse, SPEC, path, tmp_path, "run", chunking=PARALLEL)
    assert _tables(warehouse) == {"raw": [], "rejected": []}


def test_raw_tables_get_a_key_btree_and_one_brin_over_load_time_and_file(warehouse):
    warehouse.execute("drop index raw.orders__load_idx")
    for column in ("loaded_at", "source_file"):  # an earlier version's single-column BRINs
        warehouse.execute(f"create index orders__{column}_idx on raw.orders using brin (_{column})")
    loading.ensure_raw_schema(warehouse, SPEC)
    indexes = warehouse.execute(
        "select indexname, indexdef from pg_indexes where schemaname = 'raw'"
        " and tablename = 'orders' order by indexname"
    ).fetchall()
    assert indexes == [
        ("orders__key_idx", "CREATE INDEX orders__key_idx ON raw.orders USING btree (order_id)"),
        (
            "orders__load_idx",
            "CREATE INDEX orders__load_idx ON raw.orders USING brin (_loaded_at, _source_file)",
        ),
    ]


def _key_index(conn) -> tuple[int, str]:
    return conn.execute(
        "select 'raw.orders__key_idx'::regclass::oid::int,"
        " pg_get_indexdef('raw.orders__key_idx'::regclass)"
    ).fetchone()


def _rows_found_through_key_index(conn) -> int:
    with conn.transaction():
        conn.execute("set local enable_seqscan = off")
        conn.execute("set local enable_bitmapscan = off")
        plan = conn.execute("explain select count(*) from raw.orders where order_id > ''")
        assert "orders__key_idx" in "\n".join(row[0] for row in plan)
        return conn.execute("select count(*) from raw.orders where order_id > ''").fetchone()[0]


def test_a_first_load_builds_the_key_index_after_copy_and_later_loads_keep_it(warehouse, tmp_path):
    _write_events(tmp_path / "orders.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"order_id": "bad \xff utf-8", "amount": 1, "ts": "2026-10-01"}\n')
    original = _key_index(warehouse)

    with pytest.raises(SourceFileError):
        loading.load_file(warehouse, SPEC, bad, tmp_path, "run", chunking=IN_PROCESS)
    assert _key_index(warehouse) == original  # the failed first load left it as it was

    first = loading.load_file(warehouse, SPEC, tmp_path / "orders.jsonl", tmp_path, "run")
    rebuilt = _key_index(warehouse)
    assert rebuilt[0] != original[0] and rebuilt[1] == original[1]
    assert _rows_found_through_key_index(warehouse) == first.rows_loaded == 129

    second_file = tmp_path / "more.jsonl"
    second_file.write_text(_ordinary(1000) + "\n" + _ordinary(1001) + "\n")
    loading.load_file(warehouse, SPEC, second_file, tmp_path, "run")
    assert _key_index(warehouse) == rebuilt  # a table holding rows keeps its index
    assert _rows_found_through_key_index(warehouse) == 131
