"""Shared fixtures: an isolated Airflow home and a fresh real PostgreSQL database per session."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_TEST_HOME = ROOT / ".airflow" / "test"
# journey_pipeline's main line, in order (extraction is mapped over the sources).
PIPELINE_TASKS = (
    "prepare_warehouse",
    "extract_source",
    "gate_raw",
    "build_marts",
    "gate_marts",
    "send_campaigns",
    "build_reporting",
    "gate_reporting",
    "publish_reporting",
    "render_journey_report",
)

# Airflow reads its configuration at import time: point it at a private home first.
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_TEST_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "GX_ANALYTICS_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
)
AIRFLOW_TEST_HOME.mkdir(parents=True, exist_ok=True)


def _server_url() -> str:
    """A PostgreSQL server for tests: JOURNEY_TEST_SERVER_URL, the local one, or an embedded one."""
    from journeyflow import warehouse

    url = os.environ.get("JOURNEY_TEST_SERVER_URL") or warehouse.local_server_url("postgres")
    if url:
        return url
    return warehouse.embedded_server_url(ROOT / ".warehouse" / "test-pgdata", "postgres")


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


@contextmanager
def fresh_database(server_url: str, purpose: str) -> Iterator[str]:
    """A brand-new, uniquely named database on the test server, dropped afterwards."""
    import psycopg

    from journeyflow.warehouse import ensure_database, with_database

    name = f"journey_test_{purpose}_{uuid.uuid4().hex[:8]}"
    url = with_database(server_url, name)
    ensure_database(url)
    try:
        yield url
    finally:
        with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@contextmanager
def cloned_database(server_url: str, template_url: str, purpose: str) -> Iterator[str]:
    """A uniquely named copy of a template database (CREATE DATABASE ... TEMPLATE), dropped after.

    The copy is made by the server, file by file: far cheaper than building the warehouse again.
    """
    import psycopg

    from journeyflow.warehouse import database_name, with_database

    template = database_name(template_url)
    name = f"journey_test_{purpose}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        # The template must have no other session; connection pools of the run that built it
        # (e.g. an SQLAlchemy engine) may still hold idle ones.
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
            (template,),
        )
        conn.execute(f'create database "{name}" template "{template}"')
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's own metadata (SQLite in the private home), migrated once per session."""
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
