"""The warehouse is found or started without the user installing a database by hand."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from journeyflow import warehouse

pytestmark = pytest.mark.integration


def test_embedded_postgres_starts_and_hosts_the_warehouse(tmp_path):
    code = (
        "import sys, psycopg; from pathlib import Path; from journeyflow import warehouse;"
        "url = warehouse.embedded_server_url(Path(sys.argv[1]), 'journey');"
        "warehouse.ensure_database(url); warehouse.ensure_database(url);"
        "conn = psycopg.connect(url);"
        "print(conn.execute('select current_database(), version()').fetchone())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "pgdata")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "('journey', 'PostgreSQL" in result.stdout


def test_local_server_is_used_when_it_answers(server_url):
    url = warehouse.local_server_url("journey_probe")
    if url is None:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 on this machine")
    assert url == "postgresql://postgres@127.0.0.1:5432/journey_probe"


def test_ensure_database_is_idempotent(server_url):
    url = warehouse.with_database(server_url, "journey_test_ensure")
    warehouse.ensure_database(url)
    warehouse.ensure_database(url)
    with psycopg.connect(url) as conn:
        assert conn.execute("select current_database()").fetchone()[0] == "journey_test_ensure"
    with psycopg.connect(warehouse.with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute('drop database "journey_test_ensure" with (force)')
