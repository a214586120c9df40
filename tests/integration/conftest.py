"""Integration fixtures: demo data on disk, a local SendGrid sink, a DAG runner on real Postgres."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from tests.conftest import cloned_database, fresh_database

ROOT = Path(__file__).resolve().parents[2]
LOGICAL_DATE = datetime(2026, 11, 1, tzinfo=UTC)
TEST_CUSTOMERS = 300
TEST_SEED = 7


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory) -> tuple[Path, dict]:
    """A small seeded demo dataset and its manifest."""
    import json

    from journeyflow.demo_data import generate_demo_data

    data_dir = tmp_path_factory.mktemp("data")
    generate_demo_data(
        data_dir, customers=TEST_CUSTOMERS, seed=TEST_SEED, end_date=date(2026, 11, 1)
    )
    return data_dir, json.loads((data_dir / "manifest.json").read_text())


@pytest.fixture(scope="session")
def sendgrid_sink():
    from journeyflow.sendgrid_sink import SendGridSink

    with SendGridSink() as sink:
        yield sink


TEST_API_KEY = "SG.test-key-must-never-be-logged"
# The BI role is server-wide: each test session uses its own, with a login, and drops it after.
TEST_BI_ROLE = f"journey_bi_test_{uuid.uuid4().hex[:8]}"
TEST_BI_PASSWORD = "bi-test-password"


def point_pipeline_at(
    patch: pytest.MonkeyPatch, warehouse_url: str, data_dir: Path, sink_url: str
) -> None:
    """Set the environment the DAG's tasks read: warehouse, data folder, SendGrid sink and key."""
    patch.setenv("JOURNEY_WAREHOUSE_URL", warehouse_url)
    patch.setenv("JOURNEY_DATA_DIR", str(data_dir))
    patch.setenv("JOURNEY_SENDGRID_HOST", sink_url)
    patch.setenv(
        "AIRFLOW_CONN_SENDGRID_DEFAULT",
        json.dumps({"conn_type": "generic", "password": TEST_API_KEY}),
    )
    patch.setenv("JOURNEY_CAMPAIGN_MODE", "live")
    patch.setenv("JOURNEY_BI_ROLE", TEST_BI_ROLE)
    patch.setenv("JOURNEY_BI_PASSWORD", TEST_BI_PASSWORD)
    patch.setenv("JOURNEY_REPORT_DIR", str(data_dir.parent / "report"))


def drop_role(server_url: str, role: str) -> None:
    """Drop a test role: first its grants in every database that holds some, then the role."""
    from journeyflow.warehouse import with_database

    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
            return
        databases = conn.execute(
            "select distinct d.datname from pg_shdepend s join pg_database d on d.oid = s.dbid"
            " where s.refobjid = (select oid from pg_roles where rolname = %s)",
            (role,),
        ).fetchall()
        for (database,) in databases:
            with psycopg.connect(with_database(server_url, database), autocommit=True) as other:
                other.execute(f'drop owned by "{role}"')
        conn.execute(f'drop role "{role}"')


@pytest.fixture(scope="session")
def bi_role(server_url):
    """The session's BI role name; dropped (with its grants) at the end of the session."""
    yield TEST_BI_ROLE
    drop_role(server_url, TEST_BI_ROLE)


@dataclass(frozen=True)
class BuiltWarehouse:
    """A template database holding one whole pipeline run on the demo data, and what it sent."""

    url: str
    state: str
    run_id: str
    messages: list[tuple[str, dict]]
    requests: list[dict]
    report: Path


@pytest.fixture(scope="session")
def built_warehouse(server_url, demo_files, bi_role, journey_dag, tmp_path_factory):
    """The demo data run through the whole DAG once per session, kept as a template database.

    Modules that need a freshly built warehouse of their own get a copy (`cloned_database`)
    instead of running the pipeline again; nothing connects to the template itself.
    """
    from journeyflow.report import REPORT_FILE
    from journeyflow.sendgrid_sink import SendGridSink

    data_dir, _ = demo_files
    report_dir = tmp_path_factory.mktemp("built-report")
    with fresh_database(server_url, "built") as url:
        with SendGridSink() as sink, pytest.MonkeyPatch.context() as patch:
            point_pipeline_at(patch, url, data_dir, sink.url)
            patch.setenv("JOURNEY_REPORT_DIR", str(report_dir))
            dag_run = journey_dag.test(logical_date=LOGICAL_DATE)
            built = BuiltWarehouse(
                url=url,
                state=str(dag_run.state),
                run_id=dag_run.run_id,
                messages=sink.messages(),
                requests=sink.requests,
                report=report_dir / REPORT_FILE,
            )
        yield built


@pytest.fixture(scope="session")
def warehouse_url(server_url, built_warehouse):
    """The session's warehouse (end-to-end tests): a copy of the built one, run again in place."""
    with cloned_database(server_url, built_warehouse.url, "session") as url:
        yield url


@pytest.fixture(scope="session")
def pipeline_env(bi_role, warehouse_url, demo_files, sendgrid_sink, airflow_db):
    """Environment the DAG's tasks read, pointed at the test warehouse, data and sink."""
    data_dir, _ = demo_files
    with pytest.MonkeyPatch.context() as patch:
        point_pipeline_at(patch, warehouse_url, data_dir, sendgrid_sink.url)
        yield data_dir


def load_dag(dag_id: str):
    """A DAG object from the project's DAG folder (parsed the way the scheduler does)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def reporting_fingerprint(db) -> dict[str, str]:
    """A checksum of every table BI reads, to prove a failed run left them untouched."""
    names = db.execute(
        "select table_name from information_schema.tables where table_schema = 'reporting'"
    ).fetchall()
    return {
        name: db.execute(
            "select md5(coalesce(string_agg(t::text, '|' order by t::text), ''))"
            f" from reporting.{name} t"
        ).fetchone()[0]
        for (name,) in names
    }


@pytest.fixture(scope="session")
def journey_dag(airflow_db):
    return load_dag("journey_pipeline")


@pytest.fixture(scope="session")
def run_pipeline(journey_dag, pipeline_env):
    """Run the whole DAG once with dag.test(); returns the final DagRun state as text."""

    def run() -> str:
        dag_run = journey_dag.test(logical_date=LOGICAL_DATE)
        return str(dag_run.state)

    return run


@pytest.fixture()
def db(warehouse_url):
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        yield conn


@pytest.fixture()
def activation_world(server_url):
    """A fresh warehouse with hand-made marts, the activation schema and a SendGrid sink."""
    from journeyflow.sendgrid_sink import SendGridSink
    from tests.integration.activation_world import World, fresh_warehouse

    with (
        fresh_warehouse(server_url) as url,
        psycopg.connect(url, autocommit=True) as conn,
        SendGridSink() as sink,
    ):
        yield World(url, conn, sink)
