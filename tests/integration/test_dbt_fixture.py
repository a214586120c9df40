"""dbt build (models, data and unit tests) on the hand-made fixture gives the documented people."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from journeyflow.dbt_runner import DbtFailure, run_dbt
from journeyflow.warehouse import with_database
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


def episodes_of(db, profile_id: str) -> list[tuple]:
    return db.execute(
        "select journey, episode_number, state, hours_to_goal, steps_reached, revenue"
        " from marts.fct_journey_episodes where profile_id = %s order by journey, episode_number",
        (profile_id,),
    ).fetchall()


def test_alice_goal_episodes_first_purchase_then_a_repeat_still_open_at_as_of(fixture_db):
    alice = profile_of(fixture_db, "email", "alice@example.com")
    first, onboarding, repeat, second_repeat = episodes_of(fixture_db, alice)
    assert first[:5] == ("first_purchase", 1, "completed", Decimal("0.50"), 3)
    assert first[5] == Decimal("120.00")
    assert onboarding[:3] == ("onboarding", 1, "completed")
    assert repeat[:4] == ("repeat_purchase", 1, "completed", Decimal("487.50"))
    assert repeat[5] == Decimal("80.00")  # the goal order; the entry order was the first purchase
    # her last order is less than the 90-day timeout before the fixture's as_of: still open
    assert second_repeat[:3] == ("repeat_purchase", 2, "open")


def test_an_order_as_first_touch_completes_first_purchase_at_once(fixture_db):
    carol = profile_of(fixture_db, "email", "carol@example.com")
    journeys = {row[0]: row for row in episodes_of(fixture_db, carol)}
    assert journeys["first_purchase"][2:4] == ("completed", Decimal("0.00"))
    assert journeys["support_resolution"][2] == "abandoned"


def test_funnel_attempts_keep_the_furthest_ordered_step(fixture_db):
    attempts = dict(
        fixture_db.execute(
            "select r.identifier_value, f.furthest_step from marts.fct_funnel_attempts f"
            " join intermediate.int_identifiers_resolved r on r.profile_id = f.profile_id"
            " and r.identifier_type = 'email' where f.funnel = 'browse_to_order'"
        ).fetchall()
    )
    assert attempts == {
        "alice@example.com": "order_completed",
        "bob@example.com": "add_to_cart",
        "leo@example.com": "product_view",
    }


def test_journey_success_ranking_puts_the_lowest_score_first(fixture_db):
    weeks = fixture_db.execute(
        "select week_start, array_agg(success_score order by score_rank), max(journeys_scored)"
        " from reporting.rpt_journey_success_ranking where score_rank is not null"
        " group by week_start"
    ).fetchall()
    assert weeks
    for week, scores, scored in weeks:
        assert scores == sorted(scores) and len(scores) == scored, week


def test_a_bad_journey_declaration_stops_compilation_and_names_it(fixture_db, server_url):
    url = with_database(server_url, fixture_db.info.dbname)
    journeys = [{"name": "first_purchase", "entry_event": "*", "goal_event": "order_completed"}]
    journeys[0]["timeout_days"] = 0
    with pytest.raises(DbtFailure) as failure:
        run_dbt(
            ["compile", "--select", "int_journey_episodes_chained", "--vars"]
            + [json.dumps({"journeys": journeys})],
            DBT_PROJECT,
            url,
        )
    assert (
        "var('journeys') entry 1 (first_purchase): timeout_days must be a whole number of days"
        in str(failure.value)
    )
