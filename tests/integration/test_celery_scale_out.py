"""journey_pipeline on the CeleryExecutor: two workers on local Redis, a backfill, no leaked secret.

A real deployment in subprocesses (API server, scheduler, DAG processor, two Celery workers with
distinct hostnames) shares a temporary AIRFLOW_HOME and a PostgreSQL metadata database. The
scheduler creates the DAG's latest scheduled run; then the derived warehouse tables are dropped
and `airflow backfill create` over that interval must rebuild exactly the same tables (the outbox
is kept, so nothing is sent twice). Deselect with `-m "not celery"`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg
import pytest

from journeyflow.pipeline import source_names
from tests.conftest import PIPELINE_TASKS, fresh_database
from tests.integration.airflow_deployment import Deployment
from tests.integration.conftest import ROOT
from tests.integration.warehouse_fingerprint import fingerprint

pytestmark = [pytest.mark.integration, pytest.mark.celery]

REDIS_URL = "redis://127.0.0.1:6379/13"  # a database number of its own; the queue is unique too
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]
WORKERS = ("worker-a", "worker-b")
CUSTOMERS = 300
SEED = 5
WAREHOUSE_PASSWORD = "celery-wh-pass-71d3"
API_KEY = "SG.celery-test-key-5a90c2"
RUN_TIMEOUT_SECONDS = 600
DERIVED_SCHEMAS = ["raw", "staging", "intermediate", "marts", "reporting", "reporting__build", "dq"]


def redis_answers() -> bool:
    try:
        ping = subprocess.run(
            ["redis-cli", "-u", REDIS_URL, "ping"], capture_output=True, text=True, timeout=5
        )
    except FileNotFoundError:
        return False
    return ping.stdout.strip() == "PONG"


@pytest.fixture(scope="module")
def mail_sink():
    """A SendGrid sink of this module's own, so other modules' message counts stay exact."""
    from journeyflow.sendgrid_sink import SendGridSink

    with SendGridSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def redis() -> str:
    """The machine's Redis on 127.0.0.1:6379, started when it does not answer."""
    if not redis_answers():
        if not shutil.which("redis-server"):
            pytest.fail("Redis does not answer on 127.0.0.1:6379 and redis-server is not installed")
        for folder in ("/var/lib/redis", "/var/log/redis"):
            Path(folder).mkdir(parents=True, exist_ok=True)
        subprocess.run(REDIS_START, check=True, timeout=30)
        deadline = time.monotonic() + 15
        while not redis_answers():
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.2)
    return REDIS_URL


def forget_queue(redis_url: str, queue: str) -> None:
    """Drop the broker keys of this test's queue (other keys in the database are left alone)."""
    keys = subprocess.run(
        ["redis-cli", "-u", redis_url, "--scan", "--pattern", f"*{queue}*"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.split()
    if keys:
        delete = ["redis-cli", "-u", redis_url, "del", *keys]
        subprocess.run(delete, capture_output=True, timeout=10)


def free_port() -> int:
    from tests.integration.private_postgres import free_port as port

    return port()


def with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    user_host = rest.split("@", 1)
    credentials = user_host[0].split(":", 1)[0] if len(user_host) == 2 else "postgres"
    location = user_host[-1]
    return f"{scheme}://{credentials}:{password}@{location}"


@pytest.fixture(scope="module")
def deployment(redis, server_url, mail_sink, tmp_path_factory):
    """Migrated metadata DB, pools imported, every component running; stopped afterwards."""
    from journeyflow.demo_data import generate_demo_data

    home = tmp_path_factory.mktemp("celery-airflow-home")
    data_dir = tmp_path_factory.mktemp("celery-data")
    generate_demo_data(data_dir, customers=CUSTOMERS, seed=SEED, end_date=date(2026, 11, 1))
    port = free_port()
    queue = f"journey_test_{uuid.uuid4().hex[:8]}"
    with (
        fresh_database(server_url, "celery_meta") as metadata_url,
        fresh_database(server_url, "celery_wh") as warehouse_url,
    ):
        metadata = metadata_url.replace("postgresql://", "postgresql+psycopg2://", 1)
        env = {
            **{
                key: value
                for key, value in os.environ.items()
                if not key.startswith(("AIRFLOW", "JOURNEY_"))
            },
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
            "AIRFLOW__CELERY__BROKER_URL": redis,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url,
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "GX_ANALYTICS_ENABLED": "false",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "JOURNEY_WAREHOUSE_URL": with_password(warehouse_url, WAREHOUSE_PASSWORD),
            "JOURNEY_DATA_DIR": str(data_dir),
            "JOURNEY_SENDGRID_HOST": mail_sink.url,
            "AIRFLOW_CONN_SENDGRID_DEFAULT": json.dumps(
                {"conn_type": "generic", "password": API_KEY}
            ),
            "JOURNEY_CAMPAIGN_MODE": "live",
            "JOURNEY_RETRY_DELAY_SECONDS": "2",
        }
        airflow = Deployment(home, env)
        try:
            airflow.run("db", "migrate")
            airflow.run("pools", "import", str(ROOT / "dags" / "config" / "pools.json"))
            airflow.start("api-server", "api-server")
            airflow.start("dag-processor", "dag-processor")
            airflow.start("scheduler", "scheduler")
            for name in WORKERS:
                airflow.start(
                    name,
                    "celery",
                    "worker",
                    "--celery-hostname",
                    f"{name}-{queue}",
                    "--queues",
                    queue,
                    "--concurrency",
                    "2",
                    "--skip-serve-logs",
                )
            yield airflow, metadata_url, warehouse_url
        finally:
            airflow.stop()
            forget_queue(redis, queue)


def wait_for_run(deployment: Deployment, metadata_url: str, run_type: str) -> tuple[str, str]:
    """Wait until a run of the given type finishes; returns (run_id, state)."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        deployment.assert_alive()
        with psycopg.connect(metadata_url) as conn:
            row = conn.execute(
                "select run_id, state from dag_run where dag_id = 'journey_pipeline'"
                " and run_type = %s order by id desc limit 1",
                (run_type,),
            ).fetchone()
        if row and row[1] in ("success", "failed"):
            return row
        time.sleep(2)
    raise AssertionError(f"no {run_type} run finished in {RUN_TIMEOUT_SECONDS} s")


def task_instances(metadata_url: str, run_id: str) -> list[tuple]:
    with psycopg.connect(metadata_url) as conn:
        return conn.execute(
            "select task_id, map_index, state, queue, external_executor_id, pool"
            " from task_instance where dag_id = 'journey_pipeline' and run_id = %s",
            (run_id,),
        ).fetchall()


def worker_of(deployment: Deployment, celery_task_id: str) -> list[str]:
    return [
        name
        for name in WORKERS
        if f"[{celery_task_id}]" in deployment.log_path(name).read_text(errors="replace")
    ]


@pytest.fixture(scope="module")
def scheduled_run(deployment, mail_sink):
    airflow, metadata_url, warehouse_url = deployment
    run_id, state = wait_for_run(airflow, metadata_url, "scheduled")
    return run_id, state, fingerprint(warehouse_url), len(mail_sink.messages())


@pytest.fixture(scope="module")
def backfill_run(deployment, scheduled_run):
    airflow, metadata_url, warehouse_url = deployment
    run_id = scheduled_run[0]
    with psycopg.connect(metadata_url) as conn:
        (logical_date,) = conn.execute(
            "select logical_date from dag_run where run_id = %s", (run_id,)
        ).fetchone()
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for schema in DERIVED_SCHEMAS:
            conn.execute(f'drop schema if exists "{schema}" cascade')
    day = logical_date.date().isoformat()
    airflow.run(
        "backfill",
        "create",
        "--dag-id",
        "journey_pipeline",
        "--from-date",
        day,
        "--to-date",
        day,
        "--reprocess-behavior",
        "completed",
    )
    return wait_for_run(airflow, metadata_url, "backfill")


def test_the_scheduled_run_succeeds_on_two_celery_workers(deployment, scheduled_run):
    airflow, metadata_url, warehouse_url = deployment
    run_id, state, _, messages = scheduled_run
    assert state == "success", airflow.output()[-5000:]
    tis = task_instances(metadata_url, run_id)
    ran = [ti for ti in tis if ti[2] == "success"]
    # every step once (extraction mapped over the sources) plus record_run
    sources = len(source_names())
    assert len(ran) == len(tis) == len(PIPELINE_TASKS) - 1 + sources + 1
    workers_used = {}
    for task_id, map_index, _, queue, celery_id, _ in ran:
        assert queue == airflow.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
        where = worker_of(airflow, celery_id)
        assert len(where) == 1, (task_id, map_index, where)
        workers_used.setdefault(where[0], []).append((task_id, map_index))
    assert set(workers_used) == set(WORKERS), workers_used
    pools = {task_id: pool for task_id, _, _, _, _, pool in tis}
    assert pools["build_marts"] == pools["build_reporting"] == "warehouse_dbt"
    assert pools["send_campaigns"] == "sendgrid"
    assert messages > 0
    with psycopg.connect(warehouse_url) as conn:
        recorded = conn.execute(
            "select state, gates_passed from ops.pipeline_runs where run_id = %s", (run_id,)
        ).fetchone()
    assert recorded == ("success", 3)


def test_a_backfill_reproduces_the_tables_of_the_original_run(
    deployment, scheduled_run, backfill_run, mail_sink
):
    airflow, _, warehouse_url = deployment
    _, _, original, messages = scheduled_run
    run_id, state = backfill_run
    assert state == "success", airflow.output()[-5000:]
    assert fingerprint(warehouse_url) == original
    assert len(mail_sink.messages()) == messages  # the outbox kept: nothing sent twice


def test_no_secret_reaches_any_log(deployment, backfill_run):
    airflow, _, _ = deployment
    task_logs = [path for path in (airflow.home / "logs").rglob("*") if path.is_file()]
    texts = [path.read_text(errors="replace") for path in task_logs] + [airflow.output()]
    everything = "\n".join(texts)
    assert "dbt |" in everything and "extract_source" in everything  # real task logs were read
    assert len([p for p in task_logs if "task_id=build_marts" in str(p)]) >= 2
    assert API_KEY not in everything
    assert WAREHOUSE_PASSWORD not in everything
