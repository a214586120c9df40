"""Data tests scoped to rows written since they last passed still catch what is new and wrong."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from journeyflow.dbt_runner import DbtFailure, run_dbt
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
FIXTURE = DBT_PROJECT / "integration_tests" / "fixtures" / "raw_fixture.sql"
AS_OF = "2025-04-21 00:00:00"
STAGING_TESTS = ["test", "--select", "stg_web__events"]


@pytest.fixture(scope="module")
def built(server_url):
    """The fixture warehouse after one passing build: every scoped test has a watermark."""
    with fresh_database(server_url, "since_last_pass") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FIXTURE.read_text())
            # as the loader writes it: no key constraint, a load time on every row
            conn.execute("alter table raw.web_events drop constraint web_events_pkey")
            conn.execute("update raw.web_events set _loaded_at = '2025-04-20 06:00:00+00'")
        run_dbt(["build", "--vars", f"{{as_of: '{AS_OF}'}}"], DBT_PROJECT, url)
        with psycopg.connect(url, autocommit=True) as conn:
            yield url, conn


def watermark(db, test_name: str):
    return db.execute(
        "select passed_build_at from dq.data_test_watermarks where test_id like %s",
        (f"test.journeyflow.{test_name}.%",),
    ).fetchone()


def test_a_passing_build_records_where_each_scoped_test_got_to(built):
    _, db = built
    assert watermark(db, "unique_stg_web__events_event_id") is not None
    assert watermark(db, "not_null_int_touchpoints_unioned_occurred_at") is not None
    # the reporting layer's tests are not scoped: nothing recorded for them
    assert (
        db.execute(
            "select count(*) from dq.data_test_watermarks where test_id like '%%rpt_%%'"
        ).fetchone()[0]
        == 0
    )


def test_a_new_row_repeating_an_old_key_fails_until_it_is_gone(built):
    url, db = built
    before = watermark(db, "unique_stg_web__events_event_id")
    old_id = db.execute(
        "select event_id from raw.web_events order by _loaded_at, event_id limit 1"
    ).fetchone()[0]
    db.execute(
        "insert into raw.web_events select * from raw.web_events where event_id = %s",
        (old_id,),
    )
    db.execute(
        "update raw.web_events set _loaded_at = now(), _batch_id = 'resent'"
        " where ctid = (select max(ctid) from raw.web_events where event_id = %s)",
        (old_id,),
    )
    try:
        for _ in range(2):  # a failed test does not move on: the next run fails again
            with pytest.raises(DbtFailure, match="unique_stg_web__events_event_id"):
                run_dbt(STAGING_TESTS, DBT_PROJECT, url)
            assert watermark(db, "unique_stg_web__events_event_id") == before
    finally:
        db.execute("delete from raw.web_events where _batch_id = 'resent'")
    run_dbt(STAGING_TESTS, DBT_PROJECT, url)
    assert watermark(db, "unique_stg_web__events_event_id") > before


def test_a_new_row_without_a_required_value_fails(built):
    url, db = built
    db.execute(
        "insert into raw.web_events (event_id, anonymous_id, event, ts, _batch_id,"
        " _source_file, _line_number, _loaded_at, _record) values ('w-blank', '  ',"
        " 'page_view', '2025-04-01', 'blank', 'web_events/blank.jsonl', 1, now(), '{}')"
    )
    try:
        with pytest.raises(DbtFailure, match="not_null_stg_web__events_anonymous_id"):
            run_dbt(STAGING_TESTS, DBT_PROJECT, url)
    finally:
        db.execute("delete from raw.web_events where _batch_id = 'blank'")


def test_touchpoint_ids_are_unique_on_every_write(built):
    _, db = built
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(
            "insert into intermediate.int_touchpoints_unioned"
            " select * from intermediate.int_touchpoints_unioned limit 1"
        )


EPISODE_TESTS = ["test", "--select", "fct_journey_episodes"]
OLDEST_EPISODE = "(select min(ctid) from marts.fct_journey_episodes)"


def test_a_profile_marts_tests_check_only_the_rows_written_since_they_last_passed(built):
    url, db = built
    before = watermark(db, "not_null_fct_journey_episodes_state")
    assert before is not None
    state = db.execute(
        f"select state from marts.fct_journey_episodes where ctid = {OLDEST_EPISODE}"
    ).fetchone()[0]
    db.execute(f"update marts.fct_journey_episodes set state = null where ctid = {OLDEST_EPISODE}")
    try:
        run_dbt(EPISODE_TESTS, DBT_PROJECT, url)  # written before the watermark: not checked
        db.execute("update marts.fct_journey_episodes set rebuilt_at = now() where state is null")
        with pytest.raises(DbtFailure, match="not_null_fct_journey_episodes_state"):
            run_dbt(EPISODE_TESTS, DBT_PROJECT, url)
    finally:
        db.execute("update marts.fct_journey_episodes set state = %s where state is null", (state,))
    run_dbt(EPISODE_TESTS, DBT_PROJECT, url)


def test_a_profile_mart_row_repeating_an_old_key_fails(built):
    url, db = built
    db.execute(
        "insert into marts.fct_customer_stage_history"
        " select * from marts.fct_customer_stage_history"
        " where ctid = (select min(ctid) from marts.fct_customer_stage_history)"
    )
    db.execute(
        "update marts.fct_customer_stage_history"
        " set stage_spell_id = 'repeated', rebuilt_at = now()"
        " where ctid = (select max(ctid) from marts.fct_customer_stage_history)"
    )
    try:
        with pytest.raises(
            DbtFailure,
            match="unique_combination_of_columns_fct_customer_stage_history_profile_id__spell_number",
        ):
            run_dbt(["test", "--select", "fct_customer_stage_history"], DBT_PROJECT, url)
    finally:
        db.execute("delete from marts.fct_customer_stage_history where stage_spell_id = 'repeated'")
