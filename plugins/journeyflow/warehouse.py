"""Find or start the PostgreSQL warehouse and hand out connections to it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit, urlunsplit

import psycopg

LOCAL_SERVER = ("127.0.0.1", 5432)
# Sessions that scan, sort and hash whole tables (dbt builds and tests, the quality gates) run
# without PostgreSQL's JIT compilation and sort in memory. JIT: the planner's estimates over
# CTEs and views are often far off, so it compiled (up to half a second per query) where the
# query itself takes milliseconds (kpi_stage_daily: 2.04 s with JIT, 0.25 s without). Memory:
# with PostgreSQL's defaults (work_mem 4MB, maintenance_work_mem 64MB) the per-profile window
# functions, the checks' group-bys and the index builds over millions of touchpoints spilled
# tens of GB to temporary files. Two dbt threads with a few such nodes each stay within a few GB.
ANALYTIC_SESSION_OPTIONS = "-c jit=off -c work_mem=256MB -c maintenance_work_mem=512MB"
DEFAULT_DATABASE = "journey"


def analytic_session_options() -> str:
    """ANALYTIC_SESSION_OPTIONS, then PGOPTIONS if set (PostgreSQL applies them in order, so
    the caller's own settings win)."""
    existing = os.environ.get("PGOPTIONS")
    return f"{ANALYTIC_SESSION_OPTIONS} {existing}" if existing else ANALYTIC_SESSION_OPTIONS


def _port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def with_database(url: str, database: str) -> str:
    """Return the same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/")) or DEFAULT_DATABASE


def local_server_url(database: str = DEFAULT_DATABASE) -> str | None:
    """URL of the PostgreSQL on 127.0.0.1:5432 when one answers, else None."""
    host, port = LOCAL_SERVER
    if not _port_answers(host, port):
        return None
    url = f"postgresql://postgres@{host}:{port}/postgres"
    try:
        with psycopg.connect(url, connect_timeout=3):
            pass
    except psycopg.OperationalError:
        return None
    return with_database(url, database)


def embedded_server_url(data_dir: Path, database: str = DEFAULT_DATABASE) -> str:
    """Start (or reuse) an embedded PostgreSQL (pgserver package); it lives with this process."""
    import pgserver  # imported lazily: only needed when no server answers

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    return with_database(server.get_uri(), database)


def ensure_database(url: str) -> None:
    """Create the URL's database on its server if it does not exist yet (byte-order collation)."""
    name = database_name(url)
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'create database "{name}" {_byte_order_collation(conn)}')


def _byte_order_collation(conn: psycopg.Connection) -> str:
    """CREATE DATABASE options that sort text by its bytes ("C"), character classes unchanged.

    Ids and codes are what the warehouse sorts and partitions by, in nearly every window
    function; a linguistic collation (even C.UTF-8) compares them through strcoll and without
    abbreviated keys, about 2.5 times slower. For UTF-8 text, byte order is code point order.
    """
    provider = " locale_provider = libc" if conn.info.server_version >= 150000 else ""
    return f"template template0{provider} lc_collate 'C'"


@contextmanager
def connect(url: str, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """Open a psycopg connection; commits on success, rolls back on error."""
    if not url:
        raise RuntimeError("JOURNEY_WAREHOUSE_URL is not set: no warehouse to connect to")
    with psycopg.connect(url, autocommit=autocommit) as conn:
        yield conn


def connection_parts(url: str) -> dict[str, str]:
    """Split a postgres URL into host, port, user, password, dbname (host may be a socket dir)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    return {
        "host": host,
        "port": str(parts.port or query.get("port", ["5432"])[0]),
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
        "dbname": database_name(url),
    }


def dbt_environment(url: str) -> dict[str, str]:
    """Environment variables the dbt profile reads to reach this warehouse."""
    parts = connection_parts(url)
    names = {
        "host": "HOST",
        "port": "PORT",
        "user": "USER",
        "password": "PASSWORD",
        "dbname": "NAME",
    }
    return {f"JOURNEY_DB_{names[key]}": value for key, value in parts.items()}


def sqlalchemy_url(url: str, session_options: str | None = None) -> str:
    """The warehouse URL in the form SQLAlchemy (and so Great Expectations) expects.

    session_options: libpq `options` for its sessions (e.g. "-c work_mem=256MB").
    """
    parts = connection_parts(url)
    auth = parts["user"] + (f":{parts['password']}" if parts["password"] else "")
    query = {"options": session_options} if session_options else {}
    if parts["host"].startswith("/"):
        address = f"postgresql+psycopg2://{auth}@/{parts['dbname']}"
        query = {"host": parts["host"], "port": parts["port"], **query}
    else:
        address = f"postgresql+psycopg2://{auth}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    return f"{address}?{urlencode(query, quote_via=quote)}" if query else address
