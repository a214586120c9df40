"""Every source kind against real servers on loopback: intervals, reruns, late data, bad input."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from journeyflow.extraction import extract_source
from journeyflow.http_source import HttpSourceError
from journeyflow.loading import RejectionRateExceeded
from journeyflow.readers import SourceFileError
from journeyflow.sources import parse_sources
from journeyflow.warehouse import ensure_database, with_database
from tests.fake_api import FakeApi

pytestmark = pytest.mark.integration

D1 = datetime(2026, 10, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _database(server_url: str, prefix: str):
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = with_database(server_url, name)
    ensure_database(url)
    return name, url


def _drop(server_url: str, name: str) -> None:
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture()
def warehouse(server_url):
    """A fresh warehouse database per test: raw tables start empty."""
    name, url = _database(server_url, "journey_kinds")
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn
    _drop(server_url, name)


def _fingerprint(conn, *tables: str) -> dict[str, tuple[int, str]]:
    """Row count and a hash of every column of every row (load metadata included)."""
    return {
        table: conn.execute(
            f"select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), ''))"
            f" from {table} t"
        ).fetchone()
        for table in tables
    }


def _run(conn, spec, start, end, data_dir=None):
    return extract_source(conn, spec, data_dir, "test-run", end, start)


# --- http_json ------------------------------------------------------------------------------

HTTP_SOURCE = {
    "kind": "http_json",
    "connection": "crm_api",
    "url": "/v1/contacts",
    "records_path": "data",
    "pagination": {"type": "cursor", "next_cursor_path": "meta.next_cursor"},
    "incremental": {"param": "updated_since", "field": "updated_at", "lookback": "1h"},
    "backoff_seconds": 0,
    "max_retries": 2,
    "max_rejected_ratio": 0.5,
    "key": "id",
    "columns": {
        "id": {"type": "text", "required": True},
        "email": {"type": "text"},
        "score": {"type": "integer"},
        "updated_at": {"type": "timestamp", "required": True},
    },
}


def _contact(number: int, at: datetime, **extra) -> dict:
    return {"id": f"c{number}", "email": f"c{number}@example.com", "updated_at": at.isoformat(),
            "score": number, **extra}  # fmt: skip


@pytest.fixture()
def api(monkeypatch):
    with FakeApi() as server:
        connection = {"conn_type": "http", "host": server.url, "password": server.token}
        monkeypatch.setenv("AIRFLOW_CONN_CRM_API", json.dumps(connection))
        yield server


def test_http_intervals_are_exact_reruns_identical_and_late_changes_caught(warehouse, api):
    spec = parse_sources({"sources": {"contacts": HTTP_SOURCE}})["contacts"]
    # 4 changes a day for three days, every 6 hours from 00:00, one bad record on day 2
    api.records = [_contact(10 * day + i, D1 + day * DAY + timedelta(hours=6 * i))
                   for day in range(3) for i in range(4)]  # fmt: skip
    api.records.append(_contact(99, D1 + DAY + timedelta(hours=1), score="lots"))
    tables = ("raw.contacts", "raw.contacts__rejected")

    [first] = _run(warehouse, spec, D1, D1 + DAY)
    assert (first.rows_loaded, first.rows_rejected) == (4, 0)
    late = _contact(7, D1 + DAY - timedelta(minutes=30))  # committed after day 1 was extracted
    api.records.append(late)
    [second] = _run(warehouse, spec, D1 + DAY, D1 + 2 * DAY)
    assert (second.rows_loaded, second.rows_rejected) == (5, 1)  # 4 of day 2 + the late one
    after_day_two = _fingerprint(warehouse, *tables)

    [rerun] = _run(warehouse, spec, D1 + DAY, D1 + 2 * DAY)
    assert rerun.rows_loaded == 0 and rerun.rows_fetched == 5
    assert _fingerprint(warehouse, *tables) == after_day_two

    api.records[0] = _contact(0, D1 + 2 * DAY + timedelta(hours=1), email="new@example.com")
    _run(warehouse, spec, D1 + 2 * DAY, D1 + 3 * DAY)
    _run(warehouse, spec, D1, D1 + DAY)  # rerun of day 1 after later days: nothing changes
    _run(warehouse, spec, D1 + DAY, D1 + 2 * DAY)

    versions = warehouse.execute(
        "select id, updated_at, count(*) from raw.contacts group by 1, 2 order by 2, 1"
    ).fetchall()
    assert all(count == 1 for _, _, count in versions), "no duplicates"
    assert len(versions) == 12 + 1 + 1  # every change once: 12 planned, the late one, c0's update
    assert [row[0] for row in versions].count("c0") == 2  # both versions of c0 are kept
    reason, origin, raw_text = warehouse.execute(
        "select _reason, _source_file, _raw_text from raw.contacts__rejected"
    ).fetchone()
    assert "field 'score': 'lots' is not a valid integer" in reason
    assert origin.startswith(api.url) and '"lots"' in raw_text
    state = warehouse.execute(
        "select interval_start, interval_end, window_start, rows_new, watermark"
        " from raw._source_state where source = 'contacts' order by interval_end"
    ).fetchall()
    assert [(row[0], row[1]) for row in state] == [(D1 + n * DAY, D1 + (n + 1) * DAY)
                                                   for n in range(3)]  # fmt: skip
    assert state[1][2] == D1 + DAY - timedelta(hours=1)  # the lookback
    assert warehouse.execute("select count(distinct _source) from raw.contacts").fetchone() == (1,)


def test_http_failure_mid_interval_loads_nothing_of_it(warehouse, api):
    spec = parse_sources({"sources": {"contacts": HTTP_SOURCE}})["contacts"]
    api.records = [_contact(i, D1 + timedelta(hours=i)) for i in range(9)]  # three pages
    api.fail_next(502, times=3, after=1)  # page 2 keeps failing past the retries
    with pytest.raises(HttpSourceError, match="HTTP 502.*after 3 attempts"):
        _run(warehouse, spec, D1, D1 + DAY)
    assert warehouse.execute("select count(*) from raw.contacts").fetchone() == (0,)
    assert warehouse.execute("select count(*) from raw._source_state").fetchone() == (0,)
    api.fail_next(429, times=2, retry_after="0", after=1)  # throttled, then fine
    [load] = _run(warehouse, spec, D1, D1 + DAY)
    assert load.rows_loaded == 9


# --- postgres_table -------------------------------------------------------------------------

TABLE_SOURCE = {
    "kind": "postgres_table",
    "connection": "ops_db",
    "table": "app.accounts",
    "incremental": {"field": "updated_at", "lookback": "1h"},
    "soft_delete_column": "deleted_at",
    "max_rejected_ratio": 0.5,
    "key": "id",
    "columns": {
        "id": {"type": "text", "required": True},
        "email": {"type": "text"},
        "seats": {"type": "integer"},
        "mrr": {"type": "numeric"},
        "updated_at": {"type": "timestamp", "required": True},
        "deleted_at": {"type": "timestamp"},
    },
}


@pytest.fixture()
def ops_db(server_url, monkeypatch):
    """A second, operational database on the same server, reached through an Airflow connection."""
    name, url = _database(server_url, "journey_ops")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "create schema app; create table app.accounts (id text primary key, email text,"
            " seats text, mrr numeric(12, 2), updated_at timestamptz not null,"
            " deleted_at timestamptz)"
        )
        monkeypatch.setenv("AIRFLOW_CONN_OPS_DB", url.replace("postgresql://", "postgres://"))
        yield conn
    _drop(server_url, name)


def _account(conn, account_id, at, seats="3", deleted_at=None, mrr="49.90"):
    conn.execute(
        "insert into app.accounts values (%s, %s, %s, %s, %s, %s) on conflict (id) do update"
        " set seats = excluded.seats, updated_at = excluded.updated_at,"
        " deleted_at = excluded.deleted_at",
        (account_id, f"{account_id}@example.com", seats, mrr, at, deleted_at),
    )


def test_postgres_table_incremental_with_lookback_soft_deletes_and_reruns(warehouse, ops_db):
    spec = parse_sources({"sources": {"accounts": TABLE_SOURCE}})["accounts"]
    for number in range(5):
        _account(ops_db, f"a{number}", D1 + timedelta(hours=3 * number))
    _account(ops_db, "a9", D1 + timedelta(hours=20), seats="many")  # wrong type for `seats`
    [day1] = _run(warehouse, spec, D1, D1 + DAY)
    assert (day1.rows_loaded, day1.rows_rejected) == (5, 1)

    _account(ops_db, "a1", D1 + DAY + timedelta(hours=2), seats="10")  # an update
    ops_db.execute(  # soft delete that does not touch updated_at
        "update app.accounts set deleted_at = %s where id = 'a2'", (D1 + DAY + timedelta(hours=5),)
    )
    [day2] = _run(warehouse, spec, D1 + DAY, D1 + 2 * DAY)
    assert day2.rows_loaded == 2
    _account(ops_db, "a5", D1 + 2 * DAY - timedelta(minutes=20))  # late commit into day 2
    before_rerun = _fingerprint(warehouse, "raw.accounts", "raw.accounts__rejected")
    _run(warehouse, spec, D1, D1 + DAY)  # rerunning day 1 changes nothing
    assert _fingerprint(warehouse, "raw.accounts", "raw.accounts__rejected") == before_rerun
    [day3] = _run(warehouse, spec, D1 + 2 * DAY, D1 + 3 * DAY)
    assert day3.rows_loaded == 1  # the late row, through the lookback

    rows = warehouse.execute(
        "select id, seats, mrr, deleted_at is not null, _source_file from raw.accounts"
        " order by id, updated_at, deleted_at nulls first"
    ).fetchall()
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("a0", 3, False),
        ("a1", 3, False),
        ("a1", 10, False),
        ("a2", 3, False),
        ("a2", 3, True),
        ("a3", 3, False),
        ("a4", 3, False),
        ("a5", 3, False),
    ]
    assert str(rows[0][2]) == "49.90" and rows[0][4] == "app.accounts"
    [reason] = warehouse.execute("select _reason from raw.accounts__rejected").fetchone()
    assert "field 'seats': 'many' is not a valid integer" in reason


def test_postgres_table_without_the_connection_fails_naming_it(warehouse, monkeypatch):
    from journeyflow.connections import SourceConnectionError

    monkeypatch.delenv("AIRFLOW_CONN_OPS_DB", raising=False)
    spec = parse_sources({"sources": {"accounts": TABLE_SOURCE}})["accounts"]
    with pytest.raises(SourceConnectionError, match="'ops_db'"):
        _run(warehouse, spec, D1, D1 + DAY)


# --- sendgrid_events ------------------------------------------------------------------------


def _key_pair():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(public).decode()


def _write_signed(folder, name: str, events: list[dict], private_key, timestamp="1790000000"):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    body = json.dumps(events)
    signature = private_key.sign((timestamp + body).encode(), ec.ECDSA(hashes.SHA256()))
    (folder / name).write_text(body)
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }
    (folder / f"{name}.sig").write_text(json.dumps(headers))
    return body, headers


SENDGRID_COLUMNS = {
    "sg_event_id": {"type": "text", "required": True},
    "email": {"type": "text", "required": True},
    "event": {"type": "text", "required": True},
    "timestamp": {"type": "timestamp", "required": True},
}


def _events(prefix: str, count: int) -> list[dict]:
    return [
        {"sg_event_id": f"{prefix}{n}", "email": f"p{n}@example.com", "event": "open",
         "timestamp": 1790000000 + n, "sg_machine_open": False}
        for n in range(count)
    ]  # fmt: skip


def test_sendgrid_payloads_load_only_when_the_signature_verifies(warehouse, tmp_path):
    from sendgrid.helpers.eventwebhook import EventWebhook

    private, public = _key_pair()
    folder = tmp_path / "sendgrid"
    folder.mkdir()
    body, headers = _write_signed(folder, "batch-001.json", _events("e", 3), private)
    assert EventWebhook(public).verify_signature(  # the format SendGrid's own helper checks
        body, *headers.values()
    )
    source = {"kind": "sendgrid_events", "path": "sendgrid/", "verification_key": public,
              "key": "sg_event_id", "columns": SENDGRID_COLUMNS}  # fmt: skip
    spec = parse_sources({"sources": {"sendgrid_events": source}})["sendgrid_events"]
    [load] = _run(warehouse, spec, None, D1, tmp_path)
    assert (load.rows_loaded, load.file) == (3, "sendgrid/batch-001.json")
    record = warehouse.execute("select _record from raw.sendgrid_events limit 1").fetchone()[0]
    assert record["sg_machine_open"] is False  # fields not declared are kept

    _write_signed(folder, "batch-002.json", _events("f", 2), private)
    forged = folder / "batch-002.json"
    forged.write_text(forged.read_text().replace("p0@", "attacker@"))
    with pytest.raises(SourceFileError, match="batch-002.json: the SendGrid Event Webhook"):
        _run(warehouse, spec, None, D1, tmp_path)
    (folder / "batch-002.json.sig").unlink()
    with pytest.raises(SourceFileError, match=r"batch-002.json: expected a signed.*\.sig"):
        _run(warehouse, spec, None, D1, tmp_path)
    assert warehouse.execute("select count(*) from raw.sendgrid_events").fetchone() == (3,)

    unverified = replace(spec, verification_key=None)
    loads = _run(warehouse, unverified, None, D1, tmp_path)
    assert [load.status for load in loads] == ["skipped", "loaded"]


# --- files ----------------------------------------------------------------------------------

FILE_COLUMNS = {
    "order_id": {"type": "text", "required": True},
    "amount": {"type": "numeric", "required": True},
    "ts": {"type": "timestamp", "required": True},
}


def _file_spec(path: str, file_format: str, **extra):
    body = {"kind": "files", "path": path, "format": file_format, "key": "order_id",
            "columns": FILE_COLUMNS, **extra}  # fmt: skip
    return parse_sources({"sources": {"orders": body}})["orders"]


def test_gzip_jsonl_parquet_and_csv_gz_files_load(warehouse, tmp_path):
    import fastparquet
    import pandas as pd

    (tmp_path / "a").mkdir()
    with gzip.open(tmp_path / "a" / "orders-1.jsonl.gz", "wt") as handle:
        for n in range(5):
            handle.write(json.dumps({"order_id": f"j{n}", "amount": n, "ts": 1790000000}) + "\n")
    frame = pd.DataFrame({"order_id": ["p1", "p2"], "amount": [1.5, 2.5],
                          "ts": pd.to_datetime(["2026-10-01T10:00:00Z"] * 2)})  # fmt: skip
    fastparquet.write(str(tmp_path / "a" / "orders-2.parquet"), frame)
    with gzip.open(tmp_path / "a" / "orders-3.csv.gz", "wt") as handle:
        handle.write("order_id,amount,ts\nc1,3,2026-10-01T10:00:00Z\n")

    loads = _run(warehouse, _file_spec("a/*.jsonl.gz", "jsonl"), None, D1, tmp_path)
    loads += _run(warehouse, _file_spec("a/*.parquet", "parquet"), None, D1, tmp_path)
    loads += _run(warehouse, _file_spec("a/*.csv.gz", "csv"), None, D1, tmp_path)
    assert [load.rows_loaded for load in loads] == [5, 2, 1]
    assert warehouse.execute("select count(*), sum(amount) from raw.orders").fetchone() == (
        8,
        pytest.approx(17),
    )
    # analyzed after the load (reltuples is -1 until a table is first analyzed or vacuumed)
    reltuples = "select reltuples from pg_class where oid = 'raw.orders'::regclass"
    assert warehouse.execute(reltuples).fetchone()[0] == 8


def test_a_load_leaves_no_block_range_of_the_load_index_unsummarized(warehouse, tmp_path):
    """A block range filled after the index was built is not summarized until a vacuum
    does it, and matches every condition: finding the latest load would read every row."""
    with open(tmp_path / "orders.jsonl", "w", encoding="utf-8") as handle:
        for n in range(20_000):  # some 400 pages: block ranges past the first (128 pages)
            handle.write(f'{{"order_id": "o{n}", "amount": {n}, "ts": 1790000000}}\n')
    [load] = _run(warehouse, _file_spec("*.jsonl", "jsonl"), None, D1, tmp_path)
    assert load.rows_loaded == 20_000
    pages = "select pg_relation_size('raw.orders') / current_setting('block_size')::int"
    assert warehouse.execute(pages).fetchone()[0] > 2 * 128
    summarize = "select brin_summarize_new_values('raw.orders__load_idx'::regclass)"
    assert warehouse.execute(summarize).fetchone()[0] == 0


def test_changed_file_replaces_its_batch_and_drift_is_kept(warehouse, tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_text('{"order_id": "o1", "amount": 1, "ts": 1790000000}\n')
    spec = _file_spec("*.jsonl", "jsonl")
    [first] = _run(warehouse, spec, None, D1, tmp_path)
    [skipped] = _run(warehouse, spec, None, D1, tmp_path)
    assert skipped.status == "skipped" and skipped.batch_id == first.batch_id

    path.write_text(
        '{"order_id": "o1", "amount": 5, "ts": 1790000000, "coupon": "X"}\n'
        '{"order_id": "o2", "amount": 7, "ts": 1790000000, "coupon": "Y"}\n'
    )
    drifted = parse_sources(
        {"sources": {"orders": {"kind": "files", "path": "*.jsonl", "format": "jsonl",
                                "key": "order_id",
                                "columns": {**FILE_COLUMNS, "coupon": {"type": "text"}}}}}
    )["orders"]  # fmt: skip
    [second] = _run(warehouse, drifted, None, D1, tmp_path)
    assert second.batch_id != first.batch_id
    rows = warehouse.execute(
        "select order_id, amount, coupon, _batch_id from raw.orders order by 1"
    ).fetchall()
    assert rows == [("o1", 5, "X", second.batch_id), ("o2", 7, "Y", second.batch_id)]


def test_bad_files_fail_naming_the_file_and_load_nothing(warehouse, tmp_path):
    (tmp_path / "orders.csv").write_text("id,total\n1,2\n")
    with pytest.raises(SourceFileError, match="orders.csv: CSV header.*order_id"):
        _run(warehouse, _file_spec("*.csv", "csv"), None, D1, tmp_path)
    (tmp_path / "orders.csv").write_text(
        "order_id,amount,ts\no1,1,2026-10-01\no2,n/a,2026-10-01\no3,n/a,2026-10-01\n"
    )
    with pytest.raises(RejectionRateExceeded, match=r"2 of 3 rows in orders.csv .*66.7% > "):
        _run(warehouse, _file_spec("*.csv", "csv", max_rejected_ratio=0.5), None, D1, tmp_path)
    assert warehouse.execute("select count(*) from raw.orders").fetchone() == (0,)
    assert warehouse.execute("select count(*) from raw.orders__rejected").fetchone() == (0,)
    [load] = _run(warehouse, _file_spec("*.csv", "csv", max_rejected_ratio=0.7), None, D1, tmp_path)
    assert (load.rows_loaded, load.rows_rejected) == (1, 2)


def test_a_column_whose_declared_type_changed_fails_clearly(warehouse, tmp_path):
    from journeyflow.loading import ColumnTypeConflict

    (tmp_path / "orders.jsonl").write_text('{"order_id": "o1", "amount": 1, "ts": 1790000000}\n')
    _run(warehouse, _file_spec("*.jsonl", "jsonl"), None, D1, tmp_path)
    columns = {**FILE_COLUMNS, "amount": {"type": "text"}}
    body = {"kind": "files", "path": "*.jsonl", "format": "jsonl", "key": "order_id",
            "columns": columns}  # fmt: skip
    retyped = parse_sources({"sources": {"orders": body}})["orders"]
    with pytest.raises(ColumnTypeConflict, match="raw.orders: amount is numeric, declared text"):
        _run(warehouse, retyped, None, D1, tmp_path)
