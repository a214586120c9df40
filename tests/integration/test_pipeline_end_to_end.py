"""The whole loop on real PostgreSQL: counts, one send per person, idempotent reruns, gates."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from journeyflow import audience
from journeyflow.campaigns import parse_campaign_config
from journeyflow.stages import journey_stages
from tests.integration.conftest import LOGICAL_DATE, TEST_API_KEY, reporting_fingerprint
from tests.integration.identity_oracle import expected_profile_count

pytestmark = pytest.mark.integration

SOURCES = ["crm_contacts", "email_events", "orders", "support_tickets", "web_events"]
CHECKED_SCHEMAS = ("raw", "marts", "reporting", "activation", "intermediate")
AS_OF = LOGICAL_DATE + timedelta(days=1)  # the run's data interval end


def _count(db, relation: str) -> int:
    return db.execute(f"select count(*) from {relation}").fetchone()[0]


def _table_counts(db) -> dict[str, int]:
    tables = db.execute(
        "select table_schema || '.' || table_name from information_schema.tables"
        " where table_schema = any(%s) and table_type = 'BASE TABLE' order by 1",
        (list(CHECKED_SCHEMAS),),
    ).fetchall()
    # rpt_data_health charts dq.validation_results: like dq, it grows with every gate run.
    return {name: _count(db, name) for (name,) in tables if name != "reporting.rpt_data_health"}


@pytest.fixture(scope="module")
def first_run(built_warehouse, warehouse_url):
    """The session's first run (the built warehouse; `db` reads a copy of it) and what it sent."""
    return built_warehouse.state, built_warehouse.messages


def test_first_run_succeeds(first_run):
    state, _ = first_run
    assert state == "success"


def test_raw_holds_every_good_row_and_quarantines_the_malformed(first_run, db, demo_files):
    _, manifest = demo_files
    for source in SOURCES:
        good = manifest["rows"][source] - manifest["malformed"][source]
        assert _count(db, f"raw.{source}") == good, source
        assert _count(db, f"raw.{source}__rejected") == manifest["malformed"][source], source
    reasons = db.execute("select _reason from raw.orders__rejected").fetchall()
    assert all(reason for (reason,) in reasons)


def test_marts_resolve_one_profile_per_connected_person(first_run, db):
    assert _count(db, "marts.dim_customers") == expected_profile_count(db)
    assert (
        db.execute(
            "select count(*) from marts.dim_customers where current_stage is not null"
        ).fetchone()[0]
        > 0
    )


def test_every_touchpoint_lands_in_fct_touchpoints(first_run, db):
    expected = (
        _count(db, "raw.web_events")
        + _count(db, "raw.orders")
        + _count(db, "raw.support_tickets")
        + db.execute(
            "select count(*) from raw.support_tickets where solved_at is not null"
        ).fetchone()[0]
        + _count(db, "raw.email_events")
    )
    assert _count(db, "marts.fct_touchpoints") == expected
    orphans = db.execute(
        "select count(*) from marts.fct_touchpoints t"
        " left join marts.dim_customers d using (profile_id)"
        " where d.profile_id is null"
    ).fetchone()[0]
    assert orphans == 0


def test_stage_history_covers_every_staged_profile(first_run, db):
    staged = db.execute(
        "select count(*) from marts.dim_customers where current_stage is not null"
    ).fetchone()[0]
    current_spells = db.execute(
        "select count(*) from marts.fct_customer_stage_history where is_current"
    ).fetchone()[0]
    assert current_spells == staged


def test_reporting_tables_are_built(first_run, db):
    days, spells = db.execute(
        "select count(distinct (entered_at at time zone 'UTC')::date), count(*)"
        " from marts.fct_customer_stage_history"
    ).fetchone()
    # zero-filled day x stage grid, lapsed included
    assert _count(db, "reporting.rpt_funnel_daily") == days * len(journey_stages())
    assert db.execute("select sum(entered) from reporting.rpt_funnel_daily").fetchone()[0] == spells
    windows = db.execute(
        "select count(*) from ("
        "select campaign_id, trigger_window from activation.campaign_decisions"
        " union select campaign_id, trigger_window from activation.campaign_sends) w"
    ).fetchone()[0]
    assert windows > 0
    assert _count(db, "reporting.rpt_campaign_sends") == windows
    performance = db.execute(
        "select campaign_id, sum(entries) filter (where variant = 'all'),"
        " sum(entries) filter (where variant <> 'all') from reporting.rpt_campaign_performance"
        " group by 1"
    ).fetchall()
    entered = dict(
        db.execute(
            "select campaign_id, count(*) from activation.campaign_decisions"
            " where arm = 'treatment' group by 1"
        ).fetchall()
    )
    assert {campaign: (total, by_variant) for campaign, total, by_variant in performance} == {
        campaign: (count, count) for campaign, count in entered.items()
    }


def test_each_eligible_person_gets_exactly_one_message(first_run, db):
    _, messages = first_run
    decided = db.execute(
        "select count(*) from activation.campaign_decisions where decision in ('send', 'held')"
    ).fetchone()[0]
    sent = db.execute(
        "select send_id, email from activation.campaign_sends where status = 'sent'"
    ).fetchall()
    assert decided > 0
    assert len(messages) == decided == len(sent)
    at_sink = {(args["send_id"], email) for email, args in messages}
    assert at_sink == set(sent)


def test_suppressed_people_get_nothing(first_run, db):
    recipients = {email for email, _ in first_run[1]}
    blocked = db.execute(
        "select d.email from marts.dim_customers d"
        " join marts.dim_customer_contactability c using (profile_id)"
        " where d.email is not null and (d.email_status <> 'ok' or not d.email_consent"
        " or d.has_open_support_case or c.unsubscribed_at is not null"
        " or c.spam_reported_at is not null or c.undeliverable_reason is not null)"
    ).fetchall()
    assert blocked, "demo data should contain people to suppress"
    assert recipients.isdisjoint({email for (email,) in blocked})


def test_holdout_people_get_nothing_from_their_campaign(first_run, db):
    _, messages = first_run
    held_out = db.execute(
        "select x.campaign_id, d.email from activation.campaign_decisions x"
        " join marts.dim_customers d using (profile_id) where x.decision = 'holdout'"
    ).fetchall()
    assert held_out, "demo campaigns should hold people out"
    sent = {(args["campaign_id"], email) for email, args in messages}
    assert sent.isdisjoint(set(held_out))
    global_control = db.execute(
        "select d.email from activation.campaign_assignments a"
        " join marts.dim_customers d using (profile_id)"
        " where a.arm = 'global_control'"
    ).fetchall()
    assert {email for email, _ in messages}.isdisjoint({email for (email,) in global_control})


def _relations_read(db, query) -> set[str]:
    """The tables and views' tables a query's plan reads."""
    explain = sql.SQL("explain (format json) {}").format(query)
    plan = psycopg.ClientCursor(db).execute(explain, {"as_of": AS_OF}).fetchone()[0]
    found, nodes = set(), [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        found.add(node.get("Relation Name"))
        nodes += node.get("Plans", [])
    return found - {None}


def test_the_audience_snapshot_aggregates_recent_activity_only_when_a_campaign_uses_it(
    first_run, db
):
    without = _relations_read(db, audience.people_sql(db, set()))
    with_activity = _relations_read(db, audience.people_sql(db, {"touchpoints_last_90d"}))
    assert without < with_activity  # the join to the rolling counts was removed
    uses_activity = parse_campaign_config(
        {"campaigns": {"active": {"trigger": {"sql": "touchpoints_last_90d > 0"},
                                  "content": {"template_id": "d-1"}}}},
        "c.yml",
    )  # fmt: skip
    with db.transaction():
        people = audience.snapshot_people(db, AS_OF, uses_activity.campaigns)
        snapshot = db.execute(
            sql.SQL("select profile_id, touchpoints_last_90d from ({}) p").format(people)
        ).fetchall()
        columns = {c.name for c in db.execute("select * from audience_people limit 0").description}
    expected = db.execute(
        "select profile_id, touchpoints_last_90d from marts.dim_customers"
    ).fetchall()  # the view reads the as_of the pipeline ran with
    assert sorted(snapshot) == sorted(expected) and any(count for _, count in expected)
    assert "touchpoints_last_30d" not in columns and "is_stalled" in columns


def test_mail_requests_never_carry_the_api_key(built_warehouse):
    assert built_warehouse.requests
    assert TEST_API_KEY not in repr(built_warehouse.requests)


def test_rerunning_the_interval_changes_nothing_and_sends_nothing(
    first_run, run_pipeline, db, sendgrid_sink
):
    messages_before = len(sendgrid_sink.messages())
    before = _table_counts(db)
    assert run_pipeline() == "success"
    assert _table_counts(db) == before
    assert len(sendgrid_sink.messages()) == messages_before


def test_broken_raw_batch_stops_the_run_at_gate_raw(
    first_run, run_pipeline, db, sendgrid_sink, pipeline_env
):
    from journeyflow import pipeline
    from journeyflow.quality import DataQualityError

    messages_before = len(sendgrid_sink.messages())
    reporting_before = reporting_fingerprint(db)
    broken = pipeline_env / "orders" / "orders_late_batch.csv"
    broken.write_text(
        "order_id,customer_email,amount,currency,status,ts\n"
        "late-1,someone@example.com,-25.00,USD,completed,2026-10-30T10:00:00Z\n"
        "late-2,someone@example.com,10.00,USD,shipped,2026-10-30T11:00:00Z\n"
    )
    try:
        assert run_pipeline() == "failed"
        with pytest.raises(DataQualityError) as failure:
            pipeline.gate("gate_raw", "broken-batch-check", LOGICAL_DATE)
    finally:
        broken.unlink()
    message = str(failure.value)
    assert "raw.orders: expect_column_values_to_be_between(column='amount', min_value=0" in message
    assert "-25" in message
    assert "raw.orders: expect_column_values_to_be_in_set(column='status'" in message
    assert "shipped" in message
    assert len(sendgrid_sink.messages()) == messages_before
    assert reporting_fingerprint(db) == reporting_before
    recorded = db.execute(
        "select count(*) from dq.validation_results where gate = 'gate_raw' and not success"
        " and table_name = 'raw.orders'"
    ).fetchone()[0]
    assert recorded >= 2
