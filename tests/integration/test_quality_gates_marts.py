"""gate_marts validates the profiles a build rebuilt (and what failed before), not every row."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from journeyflow import mart_scope, pipeline
from journeyflow.quality import DataQualityError
from tests.conftest import fresh_database
from tests.integration.test_profile_rebuild import AS_OF, FIXTURE, build, profile_id

pytestmark = pytest.mark.integration

GATE = "gate_marts"
INTERVAL_END = datetime(2025, 4, 21, tzinfo=UTC)
ALICE = profile_id("anonymous_id:anon-a1")
DAN = profile_id("anonymous_id:anon-d1")
HISTORY = "marts.fct_customer_stage_history"


@pytest.fixture(scope="module")
def warehouse(server_url):
    """The dbt fixture built once (every profile), the pipeline's settings pointed at it."""
    with fresh_database(server_url, "gate_marts") as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("JOURNEY_WAREHOUSE_URL", url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FIXTURE.read_text())
            build(url, AS_OF)
            yield url, conn


def gate(run_id: str) -> list[tuple[str, str, str | None]]:
    """Run gate_marts as the pipeline does; the failed error checks (table, check, column)."""
    try:
        pipeline.gate(GATE, run_id, INTERVAL_END)
    except DataQualityError:
        pass
    else:
        return []
    with psycopg.connect(pipeline.load_settings().warehouse_url) as conn:
        return conn.execute(
            "select table_name, expectation, column_name from dq.validation_results"
            " where gate = %s and run_id = %s and not success and severity = 'error'"
            " order by 1, 2, 3",
            (GATE, run_id),
        ).fetchall()


def deliver_web_event(url: str, conn, event_id: str, anonymous_id: str, ts: str) -> None:
    """A new raw web event for one person, then an incremental build at the same as_of."""
    conn.execute(
        "insert into raw.web_events (event_id, anonymous_id, event, url, device, ts,"
        " _batch_id, _source_file, _line_number, _loaded_at)"
        " values (%s, %s, 'product_view', '/p/hat', 'mobile', %s,"
        " 'fixture-gate', 'web_events/gate.jsonl', 1, now())",
        (event_id, anonymous_id, ts),
    )
    build(url, AS_OF)


def validated_profiles(conn, table: str) -> set[str]:
    relation = mart_scope.validation_relation(table)
    return {row[0] for row in conn.execute(f"select distinct profile_id from {relation}")}


def relation_kind(conn, table: str) -> str:
    relation = mart_scope.validation_relation(table)
    return conn.execute(
        "select relkind from pg_class where oid = %s::regclass", (relation,)
    ).fetchone()[0]


def pending(conn) -> set[str | None]:
    rows = conn.execute(
        "select profile_id from dq.gate_pending_profiles where gate = %s", (GATE,)
    ).fetchall()
    return {profile for (profile,) in rows}


def test_after_a_full_build_the_gate_checks_every_profile_and_passes(warehouse):
    _, conn = warehouse
    assert gate("full") == []
    everyone = {row[0] for row in conn.execute(f"select distinct profile_id from {HISTORY}")}
    assert validated_profiles(conn, HISTORY) == everyone
    assert pending(conn) == set()
    assert relation_kind(conn, "marts.fct_touchpoints") == "v"  # every touchpoint: not copied
    assert relation_kind(conn, HISTORY) == "v"  # every profile: not copied


def test_a_bad_row_of_a_rebuilt_profile_fails_gate_marts(warehouse):
    url, conn = warehouse
    deliver_web_event(url, conn, "w-gate-1", "anon-d1", "2025-04-19 12:00:00+00")
    # a build that wrote a stage the rules do not know, for the one profile it rebuilt
    conn.execute(
        f"update {HISTORY} set stage = 'evangelist' where profile_id = %s and is_current", (DAN,)
    )
    failures = gate("dan-broken")
    assert (HISTORY, "expect_column_values_to_be_in_set", "stage") in failures
    # the gate read the rebuilt profile's rows only, copied once for the suite's checks
    assert validated_profiles(conn, HISTORY) == {DAN}
    assert relation_kind(conn, HISTORY) == "r"
    assert validated_profiles(conn, "marts.customer_current_stage") == {DAN}
    assert pending(conn) == {DAN}


def test_a_failure_is_checked_again_when_a_later_build_lists_others(warehouse):
    url, conn = warehouse
    deliver_web_event(url, conn, "w-gate-2", "anon-a1", "2025-04-19 13:00:00+00")
    listed = {
        row[0]
        for row in conn.execute(
            "select profile_id from intermediate.int_profiles_to_rebuild"
            " where profile_id is not null"
        )
    }
    assert listed == {ALICE}  # dan's bad row was not rebuilt ...
    failures = gate("alice-built")
    assert (HISTORY, "expect_column_values_to_be_in_set", "stage") in failures  # ... still caught
    assert validated_profiles(conn, HISTORY) == {ALICE, DAN}


def test_fixed_rows_pass_and_the_gate_lets_go_of_them(warehouse):
    _, conn = warehouse
    conn.execute(
        f"update {HISTORY} set stage = (select s.stage from marts.fct_stage_spell_outcomes s"
        f" where s.stage_spell_id = {HISTORY}.stage_spell_id) where stage = 'evangelist'"
    )
    assert gate("fixed") == []
    assert pending(conn) == set()
    # neither listed profile ever unsubscribed: the latest opt-out is bounded on the whole table
    contactability = mart_scope.validation_relation("marts.dim_customer_contactability")
    assert conn.execute(f"select count(unsubscribed_at) from {contactability}").fetchone()[0] == 0
    [(observed,)] = conn.execute(
        "select observed_value from dq.validation_results where run_id = 'fixed'"
        " and table_name = 'marts.dim_customer_contactability' and column_name = 'unsubscribed_at'"
    ).fetchall()
    assert observed is not None
    # with nothing rebuilt since, the next run validates the latest build's profiles again
    assert gate("again") == []
    assert validated_profiles(conn, HISTORY) == {ALICE}


def test_a_build_whose_gate_never_ran_is_validated_by_the_next_gate(warehouse):
    url, conn = warehouse
    deliver_web_event(url, conn, "w-gate-4", "anon-d1", "2025-04-19 14:00:00+00")
    conn.execute(
        f"update {HISTORY} set stage = 'evangelist' where profile_id = %s and is_current", (DAN,)
    )
    # the run stopped before its gate; the next run's build lists alice only
    deliver_web_event(url, conn, "w-gate-5", "anon-a1", "2025-04-19 15:00:00+00")
    failures = gate("after-a-stopped-run")
    assert (HISTORY, "expect_column_values_to_be_in_set", "stage") in failures
    assert validated_profiles(conn, HISTORY) == {ALICE, DAN}
    conn.execute(
        f"update {HISTORY} set stage = (select s.stage from marts.fct_stage_spell_outcomes s"
        f" where s.stage_spell_id = {HISTORY}.stage_spell_id) where stage = 'evangelist'"
    )
    assert gate("after-a-stopped-run-fixed") == []
    assert pending(conn) == set()


def test_a_restated_touchpoint_from_the_future_fails_gate_marts(warehouse):
    url, conn = warehouse
    deliver_web_event(url, conn, "w-gate-3", "anon-d1", "2099-01-01 00:00:00+00")
    failures = gate("future")
    assert ("marts.fct_touchpoints", "expect_column_max_to_be_between", "occurred_at") in failures
    relation = mart_scope.validation_relation("marts.fct_touchpoints")
    restated = conn.execute(f"select count(*) from {relation}").fetchone()[0]
    assert 0 < restated < conn.execute("select count(*) from marts.fct_touchpoints").fetchone()[0]
    assert relation_kind(conn, "marts.fct_touchpoints") == "r"  # the restated ones, copied once
