"""Warehouse URLs translate into the dbt profile's variables and a SQLAlchemy URL."""

from __future__ import annotations

from journeyflow.warehouse import dbt_environment, sqlalchemy_url, with_database


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
