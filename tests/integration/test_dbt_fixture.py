"""dbt build (models, data and unit tests) on the hand-made fixture gives the documented people."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from journeyflow.dbt_runner import run_dbt
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
FIXTURE = DBT_PROJECT / "integration_tests" / "fixtures" / "raw_fixture.sql"
# The fixture's "now": the last touchpoints are in March 2025, bob's late order in April.
AS_OF = "2025-04-21 00:00:00"


@pytest.fixture(scope="module")
def fixture_db(server_url):
    with fresh_database(server_url, "fixture") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FIXTURE.read_text())
        run_dbt(["build", "--vars", f"{{as_of: '{AS_OF}'}}"], DBT_PROJECT, url)
        with psycopg.connect(url, autocommit=True) as conn:
            yield conn


def profile_of(db, identifier_type: str, value: str) -> str:
    row = db.execute(
        "select profile_id from intermediate.int_identifiers_resolved"
        " where identifier_type = %s and identifier_value = %s",
        (identifier_type, value),
    ).fetchone()
    assert row, f"{identifier_type}:{value} was not resolved"
    return row[0]


def customer(db, profile_id: str) -> dict:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "select * from marts.dim_customers where profile_id = %s", (profile_id,)
        ).fetchone()


def test_population_size(fixture_db):
    assert fixture_db.execute("select count(*) from marts.dim_customers").fetchone()[0] == 15


def test_alice_cycle_of_identifiers_is_one_retained_profile(fixture_db):
    alice = {
        profile_of(fixture_db, "anonymous_id", "anon-a1"),
        profile_of(fixture_db, "user_id", "u_alice"),
        profile_of(fixture_db, "email", "alice@example.com"),
        profile_of(fixture_db, "crm_id", "c001"),
        profile_of(fixture_db, "phone", "+14155550134"),
    }
    assert len(alice) == 1
    record = customer(fixture_db, alice.pop())
    assert record["current_stage"] == "retention"
    assert record["order_count"] == 2


def test_two_devices_join_through_login_and_late_repeat_is_not_retention(fixture_db):
    bob = profile_of(fixture_db, "anonymous_id", "anon-b1")
    assert bob == profile_of(fixture_db, "anonymous_id", "anon-b2")
    assert customer(fixture_db, bob)["current_stage"] == "decision"


def test_blocklisted_values_never_link_people(fixture_db):
    assert profile_of(fixture_db, "user_id", "u_frank") != profile_of(
        fixture_db, "user_id", "u_grace"
    )
    assert profile_of(fixture_db, "crm_id", "c007") != profile_of(fixture_db, "crm_id", "c008")
    blocked = fixture_db.execute(
        "select count(*) from intermediate.int_identifiers_resolved"
        " where identifier_value in ('test@test.com', '+10000000000', 'null')"
    ).fetchone()[0]
    assert blocked == 0


def test_phone_formats_merge_and_latest_contact_wins(fixture_db):
    heidi = profile_of(fixture_db, "crm_id", "c004")
    assert heidi == profile_of(fixture_db, "crm_id", "c005")
    record = customer(fixture_db, heidi)
    assert record["email"] == "heidi@new.example"
    assert record["email_status"] == "unsubscribed"


def test_deliverability_and_support_status(fixture_db):
    carol = customer(fixture_db, profile_of(fixture_db, "email", "carol@example.com"))
    assert carol["email_status"] == "bounced"
    assert carol["has_open_support_case"] is True
    ivan = customer(fixture_db, profile_of(fixture_db, "email", "ivan@example.com"))
    assert ivan["email_status"] == "spam_reported"
    assert ivan["has_open_support_case"] is False


def spells_of(db, profile_id: str) -> list[tuple]:
    """(stage, entered_at, is_regression) of a profile's stage spells, in order."""
    return db.execute(
        "select stage, entered_at, is_regression from marts.fct_customer_stage_history"
        " where profile_id = %s order by spell_number",
        (profile_id,),
    ).fetchall()


def test_stage_entry_never_travels_back_in_time(fixture_db):
    erin = profile_of(fixture_db, "user_id", "u_erin")
    entered = [(stage, at) for stage, at, _ in spells_of(fixture_db, erin)]
    stages = dict(entered)
    assert stages["decision"] == datetime(2025, 2, 14, 16, tzinfo=UTC)
    assert [stage for stage, _ in entered][-1] == "decision"


def test_anonymous_visitor_stays_in_awareness(fixture_db):
    dan = customer(fixture_db, profile_of(fixture_db, "anonymous_id", "anon-d1"))
    assert dan["current_stage"] == "awareness"
    assert dan["email"] is None


def test_lapsed_customer_comes_back_and_restarts_the_funnel(fixture_db):
    bob = profile_of(fixture_db, "anonymous_id", "anon-b1")
    spells = spells_of(fixture_db, bob)
    # first order 2025-01-11 08:10, nothing for 90 days, the late order on 2025-04-20 08:10
    assert [(stage, regression) for stage, _, regression in spells] == [
        ("awareness", False),
        ("consideration", False),
        ("decision", False),
        ("lapsed", True),
        ("awareness", True),
        ("decision", False),
    ]
    assert spells[3][1] == datetime(2025, 4, 11, 8, 10, tzinfo=UTC)
    assert spells[4][1] == datetime(2025, 4, 20, 8, 10, tzinfo=UTC)
    current = fixture_db.execute(
        "select current_stage, entered_from, lapse_count, days_in_stage"
        " from marts.customer_current_stage where profile_id = %s",
        (bob,),
    ).fetchone()
    assert current == ("decision", "awareness", 1, 0)


def test_stage_kpis_add_up_to_the_stage_history(fixture_db):
    spells, lapses, orders = fixture_db.execute(
        "select count(*), count(*) filter (where stage = 'lapsed'), sum(orders_in_stage)"
        " from marts.fct_stage_spell_outcomes"
    ).fetchone()
    for kpi in ("kpi_stage_daily", "kpi_stage_weekly"):
        totals = fixture_db.execute(
            f"select sum(entered), sum(entered) filter (where stage = 'lapsed'), sum(orders)"
            f" from marts.{kpi}"
        ).fetchone()
        assert totals == (spells, lapses, orders), kpi
    completed_orders = fixture_db.execute(
        "select count(*) from marts.fct_touchpoints where touchpoint_type = 'order_completed'"
    ).fetchone()[0]
    assert orders == completed_orders  # every order falls in exactly one spell


def test_clv_is_history_plus_one_expected_repeat_order(fixture_db):
    alice = profile_of(fixture_db, "user_id", "u_alice")
    value = fixture_db.execute(
        "select historical_revenue, average_order_value, repeat_purchase_rate,"
        " expected_future_revenue, clv from marts.fct_customer_value where profile_id = %s",
        (alice,),
    ).fetchone()
    historical, aov, repeat_rate, expected, clv = value
    buyers, repeaters = fixture_db.execute(
        "select count(*), count(*) filter (where order_count >= 2)"
        " from marts.fct_customer_value where order_count > 0"
    ).fetchone()
    assert repeat_rate == round(Decimal(repeaters) / buyers, 4)
    assert expected == round(repeat_rate * aov, 2)
    assert clv == historical + expected
