"""Warehouse URLs translate into the dbt profile's variables and a SQLAlchemy URL."""

from __future__ import annotations

from journeyflow.warehouse import (
    ANALYTIC_SESSION_OPTIONS,
    analytic_session_options,
    dbt_environment,
    sqlalchemy_url,
    with_database,
)


def test_tcp_url():
    url = "postgresql://postgres:secret@db.example:6543/journey"
    assert dbt_environment(url) == {
        "JOURNEY_DB_HOST": "db.example",
        "JOURNEY_DB_PORT": "6543",
        "JOURNEY_DB_USER": "postgres",
        "JOURNEY_DB_PASSWORD": "secret",
        "JOURNEY_DB_NAME": "journey",
    }
    assert sqlalchemy_url(url) == "postgresql+psycopg2://postgres:secret@db.example:6543/journey"


def test_unix_socket_url_from_embedded_server():
    url = with_database("postgresql://postgres:@/postgres?host=/data/pg", "journey")
    env = dbt_environment(url)
    assert env["JOURNEY_DB_HOST"] == "/data/pg"
    assert env["JOURNEY_DB_NAME"] == "journey"
    assert (
        sqlalchemy_url(url) == "postgresql+psycopg2://postgres@/journey?host=%2Fdata%2Fpg&port=5432"
    )


def test_session_options_reach_sqlalchemy_as_libpq_options():
    url = "postgresql://postgres:secret@db.example:6543/journey"
    assert sqlalchemy_url(url, "-c work_mem=256MB") == (
        "postgresql+psycopg2://postgres:secret@db.example:6543/journey"
        "?options=-c%20work_mem%3D256MB"
    )


def test_analytic_sessions_turn_jit_off_sort_in_memory_and_let_pgoptions_win(monkeypatch):
    monkeypatch.delenv("PGOPTIONS", raising=False)
    assert analytic_session_options() == ANALYTIC_SESSION_OPTIONS
    assert "-c jit=off" in ANALYTIC_SESSION_OPTIONS and "-c work_mem=" in ANALYTIC_SESSION_OPTIONS
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=64MB")
    # PostgreSQL applies -c options in order: the caller's work_mem comes last and wins
    assert analytic_session_options() == f"{ANALYTIC_SESSION_OPTIONS} -c work_mem=64MB"
