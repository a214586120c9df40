"""Faults on real servers: the warehouse restarts mid-run, a source goes down, alerts fire."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime
from urllib.parse import quote

import psycopg
import psycopg.rows
import pytest

from tests.conftest import PIPELINE_TASKS
from tests.integration.conftest import ROOT
from tests.integration.private_postgres import PrivatePostgres
from tests.integration.warehouse_fingerprint import fingerprint
from tests.integration.webhook_sink import WebhookSink

pytestmark = pytest.mark.integration

CUSTOMERS = 300
SEED = 21
FIRST_DAY = datetime(2026, 11, 1, tzinfo=UTC)
OUTAGE_DAY = datetime(2026, 11, 2, tzinfo=UTC)
CATCH_UP_DAY = datetime(2026, 11, 3, tzinfo=UTC)
WAREHOUSE_PASSWORD = "wh-pass-3c9d71e0"
API_KEY = "SG.fault-test-key-8f02b6"
ALERT_INBOX = "oncall@example.com"
BASE_URL = "https://airflow.example.com"
SOURCES = ["crm_contacts", "email_events", "orders", "support_tickets", "web_events"]
DOWN_SOURCE = "support_tickets"
LATE_ORDERS = (
    "order_id,customer_email,amount,currency,status,ts\n"
    "LATE-0001,a.laurent@example.com,19.90,EUR,completed,2026-10-31T12:00:00Z\n"
    "LATE-0002,a.laurent@example.com,5.00,EUR,completed,2026-10-31T13:00:00Z\n"
)
TICKETS_DURING_OUTAGE = (
    '[{"ticket_id":"T-OUTAGE-1","requester_email":"a.laurent@example.com","status":"solved",'
    '"channel":"chat","subject":"Where is my parcel","opened_at":"2026-10-31T09:00:00Z",'
    '"solved_at":"2026-10-31T10:00:00Z"}]\n'
)


@pytest.fixture(scope="module")
def mail_sink():
    """A SendGrid sink of this module's own, so other modules' message counts stay exact."""
    from journeyflow.sendgrid_sink import SendGridSink

    with SendGridSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def server():
    postgres = PrivatePostgres()
    postgres.start()
    yield postgres
    postgres.remove()


@pytest.fixture(scope="module")
def databases(server) -> dict[str, str]:
    """A clean-run and a faulted-run warehouse on the private server; URLs carry a password."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        for name in ("clean", "faulted"):
            conn.execute(f"create database {name}")
    return {name: server.url(name, WAREHOUSE_PASSWORD) for name in ("clean", "faulted")}


@pytest.fixture(scope="module")
def webhook():
    with WebhookSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from journeyflow.demo_data import generate_demo_data

    folder = tmp_path_factory.mktemp("fault-data")
    generate_demo_data(folder, customers=CUSTOMERS, seed=SEED, end_date=date(2026, 11, 1))
    return folder


@pytest.fixture(scope="module")
def dag(data_dir, webhook, mail_sink, airflow_db):
    """The DAG parsed with short retry delays and alerts pointed at the local sinks."""
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JOURNEY_DATA_DIR", str(data_dir))
        patch.setenv("JOURNEY_SENDGRID_HOST", mail_sink.url)
        patch.setenv(
            "AIRFLOW_CONN_SENDGRID_DEFAULT",
            json.dumps({"conn_type": "generic", "password": API_KEY}),
        )
        patch.setenv("JOURNEY_CAMPAIGN_MODE", "dry_run")
        patch.setenv("JOURNEY_RETRY_DELAY_SECONDS", "2")
        patch.setenv("JOURNEY_ALERT_WEBHOOK_URL", webhook.url)
        patch.setenv("JOURNEY_ALERT_EMAILS", ALERT_INBOX)
        patch.setenv("JOURNEY_AIRFLOW_BASE_URL", BASE_URL)
        bag = DagBag(dag_folder=str(ROOT / "dags"))
        assert bag.import_errors == {}
        yield bag.dags["journey_pipeline"]


def run_dag(dag, warehouse_url: str, logical_date: datetime):
    """One real run with dag.test(); returns the DagRun and its task instances by key."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JOURNEY_WAREHOUSE_URL", warehouse_url)
        dag_run = dag.test(logical_date=logical_date)
    tis = {
        ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{SOURCES[ti.map_index]}]": ti
        for ti in dag_run.get_task_instances()
    }
    return dag_run, tis


def pipeline_run_row(url: str, run_id: str) -> dict:
    from journeyflow.ops import RUNS_TABLE

    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(f"select * from {RUNS_TABLE} where run_id = %s", (run_id,)).fetchone()


class RestartWhileDbtRuns(threading.Thread):
    """Crash-stops the warehouse as soon as dbt is connected to it, then starts it again."""

    def __init__(self, server: PrivatePostgres, database: str) -> None:
        super().__init__(daemon=True)
        self.server, self.database = server, database
        self.done = threading.Event()
        self.restarted = False

    def _dbt_connected(self) -> bool:
        try:
            with psycopg.connect(self.server.url(), autocommit=True, connect_timeout=2) as conn:
                return conn.execute(
                    "select count(*) > 0 from pg_stat_activity"
                    " where application_name = 'dbt' and datname = %s",
                    (self.database,),
                ).fetchone()[0]
        except psycopg.OperationalError:
            return False

    def run(self) -> None:
        while not self.done.is_set():
            if self._dbt_connected():
                self.server.stop("immediate")
                time.sleep(1)
                self.server.start()
                self.restarted = True
                return
            time.sleep(0.1)


@pytest.fixture(scope="module")
def clean_run(dag, databases):
    return run_dag(dag, databases["clean"], FIRST_DAY)


@pytest.fixture(scope="module")
def restarted_run(dag, databases, server, clean_run):
    restarter = RestartWhileDbtRuns(server, "faulted")
    restarter.start()
    try:
        result = run_dag(dag, databases["faulted"], FIRST_DAY)
    finally:
        restarter.done.set()
        restarter.join()
    return result, restarter.restarted


@pytest.fixture(scope="module")
def outage_run(dag, databases, data_dir, webhook, restarted_run):
    """The support-ticket folder disappears while new orders arrive."""
    (data_dir / "orders" / "orders_late.csv").write_text(LATE_ORDERS)
    folder = data_dir / DOWN_SOURCE
    folder.rename(data_dir / f"{DOWN_SOURCE}.offline")
    alerts_before = len(webhook.received)
    try:
        dag_run, tis = run_dag(dag, databases["faulted"], OUTAGE_DAY)
    finally:
        (data_dir / f"{DOWN_SOURCE}.offline").rename(folder)
    return dag_run, tis, webhook.received[alerts_before:]


@pytest.fixture(scope="module")
def catch_up_run(dag, databases, data_dir, webhook, outage_run):
    (data_dir / DOWN_SOURCE / "support_tickets_outage.json").write_text(TICKETS_DURING_OUTAGE)
    alerts_before = len(webhook.received)
    dag_run, tis = run_dag(dag, databases["faulted"], CATCH_UP_DAY)
    return dag_run, tis, webhook.received[alerts_before:]


def test_clean_run_writes_its_pipeline_runs_row(clean_run, databases):
    dag_run, tis = clean_run
    assert str(dag_run.state) == "success"
    row = pipeline_run_row(databases["clean"], dag_run.run_id)
    assert row["state"] == "success" and row["failed_tasks"] == []
    assert row["dag_id"] == "journey_pipeline" and row["logical_date"] == FIRST_DAY
    with psycopg.connect(databases["clean"]) as conn:
        loaded, rejected = conn.execute(
            "select sum(rows_loaded), sum(rows_rejected) from raw._load_batches"
        ).fetchone()
        decided, suppressed = conn.execute(
            "select count(*) filter (where decision = 'send'),"
            " count(*) filter (where decision = 'suppressed') from activation.campaign_decisions"
        ).fetchone()
    assert (row["rows_loaded"], row["rows_rejected"]) == (loaded, rejected)
    assert row["rows_in"] == loaded + rejected
    assert row["gates_passed"] == 3 and row["gates_failed"] == 0
    assert row["messages_suppressed"] == suppressed > 0
    assert row["messages_sent"] == 0  # dry run: decided, not sent
    assert row["tasks"]["send_campaigns"]["messages_decided"] == decided
    expected_keys = {
        *(task for task in PIPELINE_TASKS if task != "extract_source"),
        *(f"extract_source[{index}]" for index in range(len(SOURCES))),
    }
    assert set(row["tasks"]) == expected_keys
    for key, task in row["tasks"].items():
        assert task["state"] == "success", key
        assert task["duration_seconds"] > 0, key
    assert row["tasks"]["build_marts"]["dbt_pass"] > 0
    assert row["tasks"]["build_marts"]["dbt_error"] == 0
    assert row["tasks"][f"extract_source[{SOURCES.index('orders')}]"]["source"] == "orders"
    assert row["ended_at"] > row["started_at"]


def test_warehouse_restart_mid_run_is_retried_and_matches_a_clean_run(
    restarted_run, clean_run, databases, server
):
    (dag_run, tis), restarted = restarted_run
    assert restarted, "the warehouse was never restarted while dbt was connected"
    assert "immediate shutdown request" in (server.root / "server.log").read_text()
    assert str(dag_run.state) == "success"
    assert tis["build_marts"].try_number >= 2  # the first try died with the server
    assert fingerprint(databases["faulted"]) == fingerprint(databases["clean"])


def test_a_source_that_is_down_fails_alone_while_the_others_flow(outage_run, databases):
    dag_run, tis, _ = outage_run
    assert str(dag_run.state) == "failed"
    down = tis[f"extract_source[{DOWN_SOURCE}]"]
    assert str(down.state) == "failed" and down.try_number == 3  # retried twice first
    for source in set(SOURCES) - {DOWN_SOURCE}:
        assert str(tis[f"extract_source[{source}]"].state) == "success", source
    for task in ("gate_raw", "build_marts", "gate_marts", "record_run"):
        assert str(tis[task].state) == "success", task
    for task in ("send_campaigns", "build_reporting", "gate_reporting", "publish_reporting"):
        assert str(tis[task].state) == "upstream_failed", task
    with psycopg.connect(databases["faulted"]) as conn:
        late = conn.execute(
            "select count(*) from marts.fct_touchpoints where touchpoint_id like 'order:LATE-%'"
        ).fetchone()[0]
        decided_in_outage = conn.execute(
            "select count(*) from activation.campaign_decisions where run_id = %s",
            (dag_run.run_id,),
        ).fetchone()[0]
    assert late == 2  # the orders that arrived meanwhile reached the marts
    assert decided_in_outage == 0  # no campaign decided on incomplete data
    row = pipeline_run_row(databases["faulted"], dag_run.run_id)
    assert row["state"] == "failed"
    assert f"extract_source[{SOURCES.index(DOWN_SOURCE)}]" in row["failed_tasks"]
    assert "send_campaigns" in row["failed_tasks"]
    assert row["rows_loaded"] == 2 and row["gates_passed"] == 2


def test_the_failure_alerts_webhook_and_inbox_with_a_run_link(outage_run, mail_sink):
    dag_run, _, alerts = outage_run
    assert len(alerts) == 1, alerts  # the failed task, once: not per retry, not per skipped task
    alert = alerts[0]
    assert alert["dag_id"] == "journey_pipeline"
    assert (alert["task_id"], alert["map_index"]) == ("extract_source", SOURCES.index(DOWN_SOURCE))
    assert alert["run_id"] == dag_run.run_id and alert["try_number"] == 3
    assert "SourceUnavailable" in alert["error"] and DOWN_SOURCE in alert["error"]
    run_path = f"/dags/journey_pipeline/runs/{quote(dag_run.run_id, safe='')}"
    assert alert["run_url"] == BASE_URL + run_path
    mails = [
        request["body"]
        for request in mail_sink.requests
        if request["body"].get("subject") == alert["title"]
    ]
    assert len(mails) == 1
    assert mails[0]["personalizations"][0]["to"] == [{"email": ALERT_INBOX}]
    text = mails[0]["content"][0]["value"]
    assert alert["run_url"] in text and DOWN_SOURCE in text
    everything_sent = repr(alerts) + repr(mail_sink.requests)
    assert API_KEY not in everything_sent and WAREHOUSE_PASSWORD not in everything_sent


def test_the_next_run_catches_up_with_no_gap(catch_up_run, databases, data_dir):
    from journeyflow.loading import discover_files
    from journeyflow.settings import load_settings
    from journeyflow.sources import load_sources

    dag_run, tis, alerts = catch_up_run
    assert str(dag_run.state) == "success", {k: str(t.state) for k, t in tis.items()}
    assert alerts == []
    specs = load_sources(load_settings().sources_file)
    with psycopg.connect(databases["faulted"]) as conn:
        for source in SOURCES:
            on_disk = {
                str(path.relative_to(data_dir)) for path in discover_files(specs[source], data_dir)
            }
            loaded = {
                name
                for (name,) in conn.execute(
                    "select source_file from raw._load_batches where source = %s", (source,)
                )
            }
            assert loaded == on_disk, source
        tickets = conn.execute(
            "select count(*) from marts.fct_touchpoints where touchpoint_id like '%T-OUTAGE-1'"
        ).fetchone()[0]
    assert tickets >= 1
    assert str(tis["send_campaigns"].state) == "success"  # activation resumed on complete data
    assert pipeline_run_row(databases["faulted"], dag_run.run_id)["state"] == "success"
