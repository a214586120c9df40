"""Profile marts rewrite only the profiles int_profiles_to_rebuild lists; as_of moves states."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from journeyflow.dbt_runner import run_dbt
from tests.conftest import fresh_database
from tests.integration.warehouse_fingerprint import fingerprint

pytestmark = pytest.mark.integration

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
FIXTURE = DBT_PROJECT / "integration_tests" / "fixtures" / "raw_fixture.sql"
# The fixture's own as-of time, then one after alice's lapse (90 days after her last activity,
# early March) and her open repeat-purchase episode's timeout (2025-04-25) fell due.
AS_OF, LATER = "2025-04-21 00:00:00", "2025-07-01 00:00:00"
LATE_VIEW_AT = datetime(2025, 6, 30, 12, tzinfo=UTC)
COMPARED = ["intermediate", "marts"]
ALICE = "anonymous_id:anon-a1"
DAN = "anonymous_id:anon-d1"
PROFILE_TABLES = [
    "intermediate.int_orders_converted",
    "intermediate.int_journey_episodes_chained",
    "intermediate.int_funnel_attempts_chained",
    "marts.fct_customer_stage_history",
    "marts.fct_stage_spell_outcomes",
    "marts.fct_journey_episodes",
    "marts.fct_funnel_attempts",
    "intermediate.int_customer_profiles",
    "marts.dim_customer_contactability",
    "intermediate.int_customer_weeks",
]
# Tables of episodes in time: a listed profile's rows from its rebuild_from on are rewritten.
TAIL_COLUMNS = {
    "intermediate.int_journey_episodes_chained": "timeout_at",
    "intermediate.int_funnel_attempts_chained": "window_ends_at",
    "marts.fct_journey_episodes": "timeout_at",
    "marts.fct_funnel_attempts": "window_ends_at",
    "intermediate.int_customer_weeks": "week_ends_at",
}
# Ivan's ticket, solved in February, delivered again open: months before the restatement window.
IVAN_TICKET_REOPENED = (
    "update raw.support_tickets set status = 'open', solved_at = null, _loaded_at = now()"
    " where ticket_id = 't002'"
)
DAN_LATE_VIEW = (
    "insert into raw.web_events (event_id, anonymous_id, event, url, device, ts,"
    " _batch_id, _source_file, _line_number, _loaded_at)"
    " values ('w900', 'anon-d1', 'product_view', '/p/hat', 'mobile',"
    " '2025-06-30 12:00:00+00', 'fixture-0002', 'web_events/late.jsonl', 1, now())"
)


def profile_id(identifier_key: str) -> str:
    return "p_" + hashlib.md5(identifier_key.encode()).hexdigest()[:16]


def build(url: str, as_of: str) -> str:
    """Seeds and models (not the reporting layer, no data tests) at the given as_of; dbt's
    output."""
    selection = [
        "--resource-type",
        "seed",
        "--resource-type",
        "model",
        "--exclude",
        "tag:reporting",
    ]
    return run_dbt(["build", *selection, "--vars", f"{{as_of: '{as_of}'}}"], DBT_PROJECT, url)


def written_since(conn, marker: int) -> dict[str, dict[str, int]]:
    """Rows per profile of each profile table written by transactions from `marker` on."""
    written = {}
    for table in PROFILE_TABLES:
        rows = conn.execute(
            f"select profile_id, count(*) from {table}"
            " where xmin::text::bigint >= %s group by profile_id",
            (marker,),
        ).fetchall()
        written[table] = dict(rows)
    return written


def listed(conn) -> tuple[bool, dict[str, str]]:
    rebuild_all = conn.execute(
        "select rebuild_all from intermediate.int_profiles_to_rebuild where profile_id is null"
    ).fetchone()[0]
    rows = conn.execute(
        "select profile_id, reasons from intermediate.int_profiles_to_rebuild"
        " where profile_id is not null"
    ).fetchall()
    return rebuild_all, dict(rows)


def current_stage(conn, profile: str) -> str:
    return conn.execute(
        "select current_stage from marts.customer_current_stage where profile_id = %s", (profile,)
    ).fetchone()[0]


def repeat_purchase_states(conn, profile: str) -> list[str]:
    rows = conn.execute(
        "select state from marts.fct_journey_episodes"
        " where profile_id = %s and journey = 'repeat_purchase' order by episode_number",
        (profile,),
    ).fetchall()
    return [state for (state,) in rows]


def states_against_a_full_build(server_url, url: str, name: str, *changes: str) -> list:
    """Fingerprints of the warehouse at `url` and of one built whole at LATER from the fixture
    with the same `changes` (SQL statements on the raw tables)."""
    with fresh_database(server_url, name) as full_url:
        with psycopg.connect(full_url, autocommit=True) as full:
            full.execute(FIXTURE.read_text())
            for change in changes:
                full.execute(change)
        build(full_url, LATER)
        return [fingerprint(u, schemas=COMPARED, include_views=True) for u in (url, full_url)]


@pytest.fixture(scope="module")
def warehouse(server_url):
    with fresh_database(server_url, "profiles") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FIXTURE.read_text())
        build(url, AS_OF)
        with psycopg.connect(url, autocommit=True) as conn:
            yield url, conn


@pytest.fixture(scope="module")
def as_of_advance(warehouse, server_url):
    """The same data built again with a later as_of only."""
    url, conn = warehouse
    before = {
        "stage": current_stage(conn, profile_id(ALICE)),
        "episodes": repeat_purchase_states(conn, profile_id(ALICE)),
        "rows": {
            t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in PROFILE_TABLES
        },
    }
    marker = conn.execute("select txid_current()").fetchone()[0]
    build(url, LATER)
    return before, marker, states_against_a_full_build(server_url, url, "profiles_full")


def test_first_build_recomputes_every_profile(warehouse):
    _, conn = warehouse
    rebuild_all, profiles = listed(conn)
    assert rebuild_all and profiles == {}


def test_an_as_of_advance_lapses_a_due_profile_and_abandons_its_open_episode(
    warehouse, as_of_advance
):
    _, conn = warehouse
    before, _, _ = as_of_advance
    assert before["stage"] == "retention" and before["episodes"] == ["completed", "open"]
    assert current_stage(conn, profile_id(ALICE)) == "lapsed"
    assert repeat_purchase_states(conn, profile_id(ALICE)) == ["completed", "abandoned"]


def test_an_as_of_advance_builds_what_a_full_build_at_that_as_of_builds(as_of_advance):
    incremental, full = as_of_advance[2]
    assert sorted(incremental) == sorted(full)
    assert [table for table in full if incremental[table] != full[table]] == []


def test_an_as_of_advance_rewrites_only_the_profiles_it_lists(warehouse, as_of_advance):
    _, conn = warehouse
    _, marker, _ = as_of_advance
    rebuild_all, profiles = listed(conn)
    assert not rebuild_all
    assert profile_id(ALICE) in profiles and set(profiles.values()) == {"as_of"}
    total = conn.execute("select count(*) from marts.dim_customers").fetchone()[0]
    assert len(profiles) < total  # profiles with nothing falling due in the 71 days are not
    written = written_since(conn, marker)
    for table, per_profile in written.items():
        assert set(per_profile) <= set(profiles), table
    # a listed profile's rows are all written again
    assert (
        written["marts.fct_customer_stage_history"][profile_id(ALICE)]
        == conn.execute(
            "select count(*) from marts.fct_customer_stage_history where profile_id = %s",
            (profile_id(ALICE),),
        ).fetchone()[0]
    )


@pytest.fixture(scope="module")
def late_delivery(warehouse, as_of_advance, server_url):
    """A late touchpoint for one person built incrementally, and the same data built whole."""
    url, conn = warehouse
    before = conn.execute(
        "select touchpoint_count from marts.dim_customers where profile_id = %s",
        (profile_id(DAN),),
    ).fetchone()[0]
    conn.execute(DAN_LATE_VIEW)
    marker = conn.execute("select txid_current()").fetchone()[0]
    output = build(url, LATER)
    states = states_against_a_full_build(server_url, url, "profiles_late_full", DAN_LATE_VIEW)
    return before, marker, states, output


def test_a_delivery_for_one_person_rewrites_only_that_profile(warehouse, late_delivery):
    _, conn = warehouse
    touchpoints, marker, _, _ = late_delivery
    dan = profile_id(DAN)
    rebuild_all, profiles = listed(conn)
    assert not rebuild_all and set(profiles) == {dan}
    assert "touchpoint" in profiles[dan]
    written = written_since(conn, marker)
    assert {table: set(rows) for table, rows in written.items() if rows} == {
        table: {dan}
        for table in PROFILE_TABLES
        if conn.execute(
            f"select 1 from {table} where profile_id = %s {tail_condition(table)}",
            (dan, LATE_VIEW_AT),
        ).fetchone()
    }
    assert written["intermediate.int_customer_profiles"] == {dan: 1}
    assert (
        conn.execute(
            "select touchpoint_count from marts.dim_customers where profile_id = %s", (dan,)
        ).fetchone()[0]
        == touchpoints + 1
    )


def tail_condition(table: str) -> str:
    """The rows of `table` a profile rebuilt from LATE_VIEW_AT on gets rewritten."""
    column = TAIL_COLUMNS.get(table)
    return f"and {column} >= %s" if column else "and %s is not null"


def test_a_late_touchpoint_keeps_the_episodes_that_settled_before_it(warehouse, late_delivery):
    _, conn = warehouse
    _, marker, _, _ = late_delivery
    dan = profile_id(DAN)
    rebuild_from = conn.execute(
        "select rebuild_from from intermediate.int_profiles_to_rebuild where profile_id = %s",
        (dan,),
    ).fetchone()[0]
    assert rebuild_from == LATE_VIEW_AT
    written = written_since(conn, marker)
    for table, column in TAIL_COLUMNS.items():
        kept, rewritten = conn.execute(
            f"select count(*) filter (where {column} < %s), count(*) filter (where {column} >= %s)"
            f" from {table} where profile_id = %s",
            (LATE_VIEW_AT, LATE_VIEW_AT, dan),
        ).fetchone()
        assert written[table].get(dan, 0) == rewritten > 0, table
        if "journey" in table or "weeks" in table:  # his first visit (its week and its
            assert kept == 1, table  # episode, abandoned in March) stays as it was
    episodes = conn.execute(
        "select episode_number, state from marts.fct_journey_episodes"
        " where profile_id = %s and journey = 'first_purchase' order by episode_number",
        (dan,),
    ).fetchall()
    assert episodes == [(1, "abandoned"), (2, "open")]


def test_a_late_touchpoint_builds_what_a_full_build_builds(late_delivery):
    incremental, full = late_delivery[2]
    assert sorted(incremental) == sorted(full)
    assert [table for table in full if incremental[table] != full[table]] == []


@pytest.fixture(scope="module")
def reopened_ticket(warehouse, late_delivery, server_url):
    """A ticket solved long ago delivered again open, built incrementally and whole."""
    url, conn = warehouse
    conn.execute(IVAN_TICKET_REOPENED)
    output = build(url, LATER)
    return output, states_against_a_full_build(
        server_url, url, "profiles_reopened_full", DAN_LATE_VIEW, IVAN_TICKET_REOPENED
    )


def test_a_ticket_delivered_again_open_loses_its_solved_touchpoint(warehouse, reopened_ticket):
    _, conn = warehouse
    touchpoints = conn.execute(
        "select touchpoint_id from intermediate.int_touchpoints_unioned"
        " where source = 'support' and source_record_id = 't002'"
    ).fetchall()
    assert touchpoints == [("ticket_opened:t002",)]
    incremental, full = reopened_ticket[1]
    assert [table for table in full if incremental[table] != full[table]] == []


def test_a_delivery_that_only_adds_records_restates_no_days_of_the_window(late_delivery):
    """The restatement window is for records that went away: a source that only gained
    records has nothing there to restate but its new records."""
    output = late_delivery[3]
    assert "of no source (no records went away)" in output


def test_a_source_that_lost_a_record_restates_the_days_of_the_window(reopened_ticket):
    """Ivan's ticket, written again in place, is one record loaded since the previous run
    while the source holds no more records than before: one went away, so the support
    source's window days are restated, and no other source's."""
    output = reopened_ticket[0]
    assert "int_touchpoints_unioned: support holds" in output
    assert " of support and the touchpoints of identifiers" in output
