"""Rows rejected at load can be fixed by a person and re-ingested once through a real DAG run."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.conftest import fresh_database
from tests.integration.conftest import LOGICAL_DATE, ROOT, load_dag

pytestmark = pytest.mark.integration

HEADER = "order_id,customer_email,amount,currency,status,ts\n"
GOOD = "".join(
    f"g-{n:02d},g{n}@example.com,{n}.00,USD,completed,2026-10-01T10:00:00Z\n" for n in range(1, 61)
)
BROKEN = (
    "o-2,b@example.com,n/a,USD,completed,2026-10-02T10:00:00Z\n"  # line 62
    "o-3,c@example.com,7.50,USD,completed,not-a-date\n"  # line 63
)
ORDERS = HEADER + GOOD + BROKEN


@pytest.fixture(scope="module")
def replay_env(server_url, airflow_db, tmp_path_factory):
    from journeyflow import pipeline

    data_dir = tmp_path_factory.mktemp("replay-data")
    (data_dir / "orders").mkdir()
    (data_dir / "orders" / "orders.csv").write_text(ORDERS)
    with fresh_database(server_url, "replay") as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("JOURNEY_WAREHOUSE_URL", url)
        patch.setenv("JOURNEY_DATA_DIR", str(data_dir))
        pipeline.prepare_warehouse()
        assert pipeline.extract("orders", "load-1", LOGICAL_DATE)["rows_rejected"] == 2
        with psycopg.connect(url, autocommit=True) as conn:
            yield conn


@pytest.fixture(scope="module")
def replay_dag(airflow_db):
    return load_dag("replay_quarantine")


def fix(db, line_number: int, record: dict) -> None:
    from journeyflow.quarantine import ensure_replay_columns
    from journeyflow.sources import load_sources

    ensure_replay_columns(db, load_sources(ROOT / "dags" / "config" / "sources.yml")["orders"])
    updated = db.execute(
        "update raw.orders__rejected set _fixed_record = %s where _line_number = %s",
        (json.dumps(record), line_number),
    ).rowcount
    assert updated == 1, f"no rejected row at line {line_number}"


def replay(dag) -> str:
    return str(dag.test(logical_date=LOGICAL_DATE, run_conf={"sources": ["orders"]}).state)


def test_fixed_row_is_reingested_once(replay_env, replay_dag):
    db = replay_env
    fix(
        db,
        62,
        {
            "order_id": "o-2",
            "customer_email": "b@example.com",
            "amount": "12.00",
            "currency": "USD",
            "status": "completed",
            "ts": "2026-10-02T10:00:00Z",
        },
    )
    assert replay(replay_dag) == "success"
    assert replay(replay_dag) == "success"
    rows = db.execute(
        "select amount, _source_file, _line_number from raw.orders where order_id = 'o-2'"
    ).fetchall()
    assert [(str(amount), *rest) for amount, *rest in rows] == [("12.00", "orders/orders.csv", 62)]
    assert db.execute("select count(*) from raw.orders").fetchone()[0] == 61
    replayed = db.execute(
        "select _line_number from raw.orders__rejected where _replayed_at is not null"
    ).fetchall()
    assert replayed == [(62,)]


def test_fix_that_is_still_invalid_stays_in_quarantine_with_the_reason(replay_env, replay_dag):
    db = replay_env
    fix(
        db,
        63,
        {
            "order_id": "o-3",
            "customer_email": "c@example.com",
            "amount": "7.50",
            "status": "completed",
            "ts": "still-not-a-date",
        },
    )
    assert replay(replay_dag) == "success"
    state = db.execute(
        "select _replayed_at, _replay_error from raw.orders__rejected where _line_number = 63"
    ).fetchone()
    assert state[0] is None
    assert "field 'ts'" in state[1]
    assert db.execute("select count(*) from raw.orders where order_id = 'o-3'").fetchone()[0] == 0


def test_a_fix_carrying_an_erased_persons_identifier_is_dropped(replay_env, replay_dag):
    from journeyflow.erasure_identifiers import digest

    db = replay_env
    db.execute(
        "insert into activation.erased_identifiers (identifier_type, identifier_digest)"
        " values ('email', %s)",
        (digest("gone@example.com"),),
    )
    fix(
        db,
        63,
        {
            "order_id": "o-3",
            "customer_email": " Gone@Example.com",
            "amount": "7.50",
            "currency": "USD",
            "status": "completed",
            "ts": "2026-10-03T10:00:00Z",
        },
    )
    assert replay(replay_dag) == "success"
    assert db.execute("select count(*) from raw.orders where order_id = 'o-3'").fetchone() == (0,)
    left = db.execute("select count(*) from raw.orders__rejected where _line_number = 63")
    assert left.fetchone() == (0,)
