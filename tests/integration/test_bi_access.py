"""The BI role across publishes: SELECT on reporting survives every swap, nothing else readable."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from journeyflow import access, publishing
from journeyflow.warehouse import connection_parts
from tests.conftest import fresh_database
from tests.integration.conftest import drop_role

pytestmark = pytest.mark.integration

PASSWORD = "bi-access-test"


def _build(conn: psycopg.Connection, refresh: int) -> None:
    """What build_reporting leaves: fresh tables (no grants) in the build schema."""
    conn.execute("create schema if not exists reporting__build")
    conn.execute(
        "create table reporting__build.rpt_kpi (week date, orders bigint, run_id text);"
        f"insert into reporting__build.rpt_kpi values ('2026-10-26', {refresh}, 'run-{refresh}')"
    )


def _as_role(url: str, role: str) -> psycopg.Connection:
    parts = connection_parts(url)
    return psycopg.connect(
        host=parts["host"],
        port=parts["port"],
        dbname=parts["dbname"],
        user=role,
        password=PASSWORD,
        autocommit=True,
    )


@pytest.fixture()
def warehouse_with_role(server_url):
    role = f"journey_bi_access_{uuid.uuid4().hex[:8]}"
    try:
        with fresh_database(server_url, "bi_access") as url:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "create schema raw; create table raw.crm_contacts (email text, phone text);"
                    "insert into raw.crm_contacts values ('ann@example.com', '+15550100');"
                    "create schema marts; create table marts.dim_customers"
                    " (profile_id text, email text); insert into marts.dim_customers"
                    " values ('p_1', 'ann@example.com')"
                )
            yield url, role
    finally:
        drop_role(server_url, role)


def _publish(url: str, role: str, refresh: int) -> None:
    with psycopg.connect(url) as conn:
        _build(conn, refresh)
        access.ensure_bi_role(conn, role, PASSWORD)
        publishing.publish_schema(conn, "reporting__build", "reporting", readers=(role,))


def test_the_role_reads_reporting_after_every_publish_and_nothing_else(warehouse_with_role):
    url, role = warehouse_with_role
    for refresh in (1, 2, 3):
        _publish(url, role, refresh)
        with _as_role(url, role) as bi:
            assert bi.execute("select current_user").fetchone()[0] == role
            assert bi.execute("select orders, run_id from reporting.rpt_kpi").fetchall() == [
                (refresh, f"run-{refresh}")
            ]
            for forbidden in (
                "raw.crm_contacts",
                "marts.dim_customers",
                "reporting__build.rpt_kpi",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    bi.execute(f"select * from {forbidden}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bi.execute("create table reporting.mine (x int)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bi.execute("delete from reporting.rpt_kpi")


def test_a_moved_table_brings_no_grants_so_publishing_without_readers_locks_the_role_out(
    warehouse_with_role,
):
    """Why publish grants in its transaction: `alter table ... set schema` keeps the new table's
    own (empty) privileges, and the old table's grants are dropped with it."""
    url, role = warehouse_with_role
    _publish(url, role, 1)
    with psycopg.connect(url) as conn:
        _build(conn, 2)
        publishing.publish_schema(conn, "reporting__build", "reporting")
    with _as_role(url, role) as bi, pytest.raises(psycopg.errors.InsufficientPrivilege):
        bi.execute("select * from reporting.rpt_kpi")


def test_creating_the_role_twice_is_harmless(warehouse_with_role):
    url, role = warehouse_with_role
    with psycopg.connect(url) as conn:
        access.ensure_bi_role(conn, role)
        access.ensure_bi_role(conn, role)
        can_login = conn.execute(
            "select rolcanlogin from pg_roles where rolname = %s", (role,)
        ).fetchone()[0]
    assert can_login is False  # no password configured: a group role for BI users
