"""The DAG's extract tasks under dag.test(): consecutive intervals, reruns and a backfilled gap."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from journeyflow.warehouse import ensure_database, with_database
from tests.conftest import PIPELINE_TASKS
from tests.fake_api import FakeApi

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DAY = timedelta(days=1)
FIRST = datetime(2026, 10, 2, tzinfo=UTC)
SOURCES = {
    "sources": {
        "contacts": {
            "kind": "http_json",
            "connection": "crm_api",
            "url": "/v1/contacts",
            "records_path": "data",
            "pagination": {"type": "page", "page_param": "page", "size_param": "per_page",
                           "page_size": 4},
            "incremental": {"param": "updated_since", "field": "updated_at", "lookback": "2h"},
            "backoff_seconds": 0,
            "key": "id",
            "columns": {
                "id": {"type": "text", "required": True},
                "email": {"type": "text"},
                "updated_at": {"type": "timestamp", "required": True},
            },
        },
        "accounts": {
            "kind": "postgres_table",
            "connection": "ops_db",
            "table": "accounts",
            "incremental": {"field": "updated_at", "lookback": "2h"},
            "key": "id",
            "columns": {
                "id": {"type": "text", "required": True},
                "updated_at": {"type": "timestamp", "required": True},
            },
        },
    }
}  # fmt: skip


def _database(server_url: str, prefix: str) -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = with_database(server_url, name)
    ensure_database(url)
    return name, url


@pytest.fixture(scope="module")
def environment(server_url, airflow_db, tmp_path_factory):
    """A warehouse, an operational database and an API, each with 8 changes a day (6-hourly)."""
    warehouse_name, warehouse_url = _database(server_url, "journey_dagtest")
    ops_name, ops_url = _database(server_url, "journey_dagops")
    sources_file = tmp_path_factory.mktemp("config") / "sources.yml"
    sources_file.write_text(yaml.safe_dump(SOURCES))
    changes = [FIRST - DAY + timedelta(hours=3 * n) for n in range(8 * 4)]  # 4 days
    with psycopg.connect(ops_url, autocommit=True) as ops:
        ops.execute("create table accounts (id text primary key, updated_at timestamptz)")
        for number, moment in enumerate(changes):
            ops.execute("insert into accounts values (%s, %s)", (f"a{number}", moment))
    with FakeApi() as api, pytest.MonkeyPatch.context() as patch:
        api.records = [
            {"id": f"c{n}", "email": f"c{n}@example.com", "updated_at": moment.isoformat()}
            for n, moment in enumerate(changes)
        ]
        patch.setenv("JOURNEY_SOURCES_FILE", str(sources_file))
        patch.setenv("JOURNEY_WAREHOUSE_URL", warehouse_url)
        patch.setenv("AIRFLOW_CONN_OPS_DB", ops_url.replace("postgresql://", "postgres://"))
        patch.setenv(
            "AIRFLOW_CONN_CRM_API",
            json.dumps({"conn_type": "http", "host": api.url, "password": api.token}),
        )
        yield warehouse_url, changes
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        for name in (warehouse_name, ops_name):
            conn.execute(f'drop database if exists "{name}" with (force)')


# Everything after extraction is marked successful without running: this test is about raw.
DOWNSTREAM = "|".join(PIPELINE_TASKS[PIPELINE_TASKS.index("gate_raw") :])


@pytest.fixture(scope="module")
def run_extraction(environment):
    """dag.test() of journey_pipeline; the steps after extraction are marked success unrun."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["journey_pipeline"]

    def run(logical_date: datetime) -> str:
        return str(dag.test(logical_date=logical_date, mark_success_pattern=DOWNSTREAM).state)

    return run


def _raw(warehouse_url: str) -> dict[str, tuple]:
    with psycopg.connect(warehouse_url) as conn:
        return {
            table: conn.execute(
                "select count(*), count(distinct (id, updated_at)), max(updated_at),"
                f" md5(string_agg(t::text, '|' order by t::text)) from raw.{table} t"
            ).fetchone()
            for table in ("contacts", "accounts")
        }


def test_each_daily_run_extracts_its_interval_and_reruns_change_nothing(
    environment, run_extraction
):
    warehouse_url, changes = environment
    assert run_extraction(FIRST) == "success"  # the first run reads everything up to FIRST
    after_first = _raw(warehouse_url)
    upto_first = sum(moment < FIRST for moment in changes)
    for table in ("contacts", "accounts"):
        assert after_first[table][:3] == (upto_first, upto_first, FIRST - timedelta(hours=3))

    assert run_extraction(FIRST + 2 * DAY) == "success"
    assert run_extraction(FIRST + DAY) == "success"  # a backfilled day in between
    after_third = _raw(warehouse_url)
    upto_third = sum(moment < FIRST + 2 * DAY for moment in changes)
    for table in ("contacts", "accounts"):
        count, distinct, latest, _ = after_third[table]
        assert count == distinct == upto_third, table  # no duplicates, no gaps
        assert latest == FIRST + 2 * DAY - timedelta(hours=3)

    with psycopg.connect(warehouse_url) as conn:
        read_before_backfill = conn.execute(
            "select interval_start from raw._source_state where interval_end = %s",
            (FIRST + 2 * DAY,),
        ).fetchall()
    assert read_before_backfill == [(FIRST,), (FIRST,)]  # it ran before the gap was filled

    for rerun in (FIRST + DAY, FIRST, FIRST + 2 * DAY):
        assert run_extraction(rerun) == "success"
    assert _raw(warehouse_url) == after_third

    with psycopg.connect(warehouse_url) as conn:
        state = conn.execute(
            "select source, interval_start, interval_end from raw._source_state"
            " order by source, interval_end"
        ).fetchall()
    assert state == [
        (source, start, end)
        for source in ("accounts", "contacts")
        for start, end in [(None, FIRST), (FIRST, FIRST + DAY), (FIRST + DAY, FIRST + 2 * DAY)]
    ]
